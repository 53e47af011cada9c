package assess_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferry-migrate/ferry/planner"
	"github.com/ferry-migrate/ferry/planner/assess"
	"github.com/ferry-migrate/ferry/planner/estate"
)

const gib = int64(1) << 30

func host(os, arch, boot string) planner.Host {
	return planner.Host{ID: "h1", Name: "h1", OS: os, Arch: arch, BootMode: boot, CPUs: 8, MemoryMiB: 32768, CPUP95: 20, MemoryP95: 40,
		Disks: []planner.Disk{{Name: "sda", ProvisionedBytes: 100 * gib, UsedBytes: 40 * gib}}}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name        string
		h           planner.Host
		target      string
		status      assess.Status
		wantAction  string // substring of some action
		wantReason  string // substring of some reason
		wantMissing string
	}{
		{"centos7 alibaba end of life", host("CentOS Linux 7.9", "x86_64", "bios"), "alibaba", assess.ReadyWithActions, "CentOS 7 reached end of life on 2024-06-30", "", ""},
		{"rocky 9", host("Rocky Linux 9.3", "x86_64", "bios"), "alibaba", assess.Ready, "", "", ""},
		{"ubuntu 24", host("Ubuntu 24.04 LTS", "x86_64", "bios"), "openstack", assess.Ready, "", "", ""},
		{"ubuntu 22 soon", host("Ubuntu 22.04 LTS", "x86_64", "bios"), "openstack", assess.ReadyWithActions, "reaches end of life on 2027-05-31", "", ""},
		{"centos6 needs virtio", host("CentOS Linux 6.10", "x86_64", "bios"), "alibaba", assess.ReadyWithActions, "virtio", "", ""},
		{"centos5 alibaba", host("CentOS Linux 5.11", "x86_64", "bios"), "alibaba", assess.NotReady, "", "Enterprise Linux 5", ""},
		{"centos5 openstack", host("CentOS Linux 5.11", "x86_64", "bios"), "openstack", assess.ReadyWithActions, "mkinitrd", "", ""},
		{"sles11", host("SUSE Linux Enterprise Server 11 SP4", "x86_64", "bios"), "alibaba", assess.ReadyWithActions, "virtio", "", ""},
		{"sles15", host("SUSE Linux Enterprise Server 15 SP4", "x86_64", "bios"), "alibaba", assess.Ready, "", "", ""},
		{"debian 12", host("Debian GNU/Linux 12 (bookworm)", "x86_64", "bios"), "alibaba", assess.Ready, "", "", ""},
		{"win2003 alibaba", host("Microsoft Windows Server 2003 R2 Standard", "x86_64", "bios"), "alibaba", assess.NotReady, "", "2003", ""},
		{"win2003 openstack", host("Microsoft Windows Server 2003 R2 Standard", "x86_64", "bios"), "openstack", assess.ReadyWithActions, "hw_disk_bus=ide", "", ""},
		{"win2008r2 sha2", host("Microsoft Windows Server 2008 R2 Enterprise", "x86_64", "bios"), "alibaba", assess.ReadyWithActions, "KB4474419", "", ""},
		{"win2019 uefi", host("Microsoft Windows Server 2019 Standard", "x86_64", "uefi"), "alibaba", assess.ReadyWithActions, "UEFI", "", ""},
		{"win2022 dhcp", host("Microsoft Windows Server 2022 Standard", "x86_64", "bios"), "openstack", assess.ReadyWithActions, "switch network to DHCP", "", ""},
		{"ppc64le", host("Red Hat Enterprise Linux 8.6", "ppc64le", "bios"), "alibaba", assess.NotReady, "", "ppc64le", ""},
		{"aarch64", host("Ubuntu 20.04 LTS", "aarch64", "bios"), "alibaba", assess.ReadyWithActions, "ARM64", "", ""},
		{"aix", host("AIX 7.2", "ppc64", "bios"), "alibaba", assess.NotReady, "", "UNIX", ""},
		{"no os", host("", "x86_64", "bios"), "alibaba", assess.Unknown, "", "", "os"},
		{"os not in matrix", host("Plan 9 4th edition", "x86_64", "bios"), "alibaba", assess.Unknown, "", "", "not in the matrix"},
		{"no arch or boot", host("Rocky Linux 9.3", "", ""), "alibaba", assess.Unknown, "", "", "boot_mode"},
		{"not ready beats unknown", host("CentOS Linux 5.11", "", ""), "alibaba", assess.NotReady, "", "Enterprise Linux 5", "arch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := assess.Assess(&tc.h, tc.target, assess.Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status {
				t.Errorf("status = %s, want %s (%+v)", r.Status, tc.status, r)
			}
			for _, c := range []struct {
				want string
				got  []string
			}{{tc.wantAction, r.Actions}, {tc.wantReason, r.Reasons}, {tc.wantMissing, r.Missing}} {
				if c.want != "" && !strings.Contains(strings.Join(c.got, " | "), c.want) {
					t.Errorf("%q not in %q", c.want, c.got)
				}
			}
		})
	}
}

// clock is the assessment day of the tests: end-of-life flags depend on it.
func clock() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

// TestEndOfLifeConsistent holds the flag to one rule for every OS and target:
// each release past its end of life (eol.yaml) is flagged with its date,
// whether the support matrix asks for other actions or none (the consultant
// saw SLES 11 flagged while CentOS 6/7, Ubuntu 18.04 and Windows 2008 R2 /
// 2012 R2 were not).
func TestEndOfLifeConsistent(t *testing.T) {
	eol := map[string]string{
		"CentOS Linux 6.10":                           "CentOS 6 reached end of life on 2020-11-30",
		"CentOS Linux 7.9.2009":                       "CentOS 7 reached end of life on 2024-06-30",
		"Red Hat Enterprise Linux Server 6.10":        "Red Hat Enterprise Linux 6 reached end of life on 2020-11-30",
		"Red Hat Enterprise Linux Server 7.9":         "Red Hat Enterprise Linux 7 reached end of life on 2024-06-30",
		"Ubuntu 16.04.7 LTS":                          "Ubuntu 16.04 reached end of life on 2021-04-30",
		"Ubuntu 18.04.6 LTS":                          "Ubuntu 18.04 reached end of life on 2023-05-31",
		"Ubuntu 20.04 LTS":                            "Ubuntu 20.04 reached end of life on 2025-05-31",
		"Microsoft Windows Server 2008 R2 Enterprise": "Windows Server 2008 / 2008 R2 reached end of life on 2020-01-14",
		"Microsoft Windows Server 2008 Standard":      "Windows Server 2008 / 2008 R2 reached end of life on 2020-01-14",
		"Microsoft Windows Server 2012 R2 Standard":   "Windows Server 2012 / 2012 R2 reached end of life on 2023-10-10",
		"SUSE Linux Enterprise Server 11 SP4":         "SUSE Linux Enterprise 11 reached end of life on 2019-03-31",
		"SUSE Linux Enterprise Server 12 SP5":         "SUSE Linux Enterprise 12 reached end of life on 2024-10-31",
		"Debian GNU/Linux 9 (stretch)":                "Debian 9 reached end of life on 2022-06-30",
		"Debian GNU/Linux 10 (buster)":                "Debian 10 reached end of life on 2024-06-30",
	}
	supported := []string{"Rocky Linux 9.3", "Ubuntu 24.04 LTS", "Microsoft Windows Server 2022 Standard", "SUSE Linux Enterprise Server 15 SP5", "Debian GNU/Linux 12 (bookworm)", "AlmaLinux 8.9"}
	for _, target := range []string{"alibaba", "openstack"} {
		for os, want := range eol {
			h := host(os, "x86_64", "bios")
			r, err := assess.Assess(&h, target, assess.Options{Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(r.Actions, " | "), want) {
				t.Errorf("%s on %s: %q not among the actions %q", os, target, want, r.Actions)
			}
			if r.Status == assess.Ready {
				t.Errorf("%s on %s: an end-of-life OS is ready with no action", os, target)
			}
			n := 0
			for _, f := range r.Findings {
				if f.Code == "assess.action.eol" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s on %s: %d end-of-life findings, want exactly 1", os, target, n)
			}
		}
		for _, os := range supported {
			h := host(os, "x86_64", "bios")
			r, _ := assess.Assess(&h, target, assess.Options{Now: clock})
			if strings.Contains(strings.Join(r.Actions, " "), "end of life") {
				t.Errorf("%s on %s is supported on %s but flagged: %q", os, target, clock().Format("2006-01-02"), r.Actions)
			}
		}
	}
}

func TestDiskLimits(t *testing.T) {
	h := host("CentOS Linux 7.9", "x86_64", "bios")
	h.Disks[0].ProvisionedBytes = 3000 * gib
	for i := 0; i < 17; i++ {
		h.Disks = append(h.Disks, planner.Disk{Name: "d", ProvisionedBytes: 10 * gib})
	}
	h.Disks = append(h.Disks, planner.Disk{Name: "huge", ProvisionedBytes: 40000 * gib})
	r, _ := assess.Assess(&h, "alibaba", assess.Options{})
	all := strings.Join(append(r.Reasons, r.Actions...), " | ")
	for _, want := range []string{"system disk sda is 3000 GiB, over the alibaba limit of 2048 GiB", "18 data disks, over the alibaba limit of 16", "split data disk huge"} {
		if !strings.Contains(all, want) {
			t.Errorf("%q not in %q", want, all)
		}
	}
	if r.Status != assess.NotReady {
		t.Errorf("status %s", r.Status)
	}
}

func TestRightSizing(t *testing.T) {
	a, err := assess.New(assess.Options{Region: "cn-hangzhou", Headroom: 0.25, Families: []string{"g7", "c7", "r7"}})
	if err != nil {
		t.Fatal(err)
	}
	h := host("CentOS Linux 7.9", "x86_64", "bios")
	// 8 vCPU at 20 % p95 +25 % = 2 vCPU; 32 GiB at 40 % +25 % = 16 GiB.
	r := a.Host(&h)
	got := []any{r.NeedVCPUs, r.NeedMemoryGiB, r.InstanceAsIs, r.InstanceRightSized}
	if diff := cmp.Diff([]any{2, 16.0, "ecs.g7.2xlarge", "ecs.r7.large"}, got); diff != "" {
		t.Errorf("sizing (-want +got):\n%s", diff)
	}
	if !(r.MonthlyRightSized < r.MonthlyAsIs) || r.StorageMonthly <= 0 {
		t.Errorf("monthly %v -> %v, storage %v", r.MonthlyAsIs, r.MonthlyRightSized, r.StorageMonthly)
	}
	h.CPUP95, h.MemoryP95 = 0, 0
	r = a.Host(&h)
	if r.InstanceRightSized != r.InstanceAsIs || !strings.Contains(r.SizingNote, "no p95") {
		t.Errorf("without p95 want as-is sizing with a note, got %+v", r)
	}
	h.BootMode = "uefi"
	if a6, _ := assess.New(assess.Options{Families: []string{"g6", "g7"}}); a6 != nil {
		if r := a6.Host(&h); strings.Contains(r.InstanceAsIs, "g6") {
			t.Errorf("UEFI host sized on g6 (no UEFI): %s", r.InstanceAsIs)
		}
	}
}

func TestOfflineSeedingFieldCase(t *testing.T) {
	// 40 TB over 5 Mbit/s, weeknights and weekends only.
	rate := planner.BitRate(5e6)
	link := planner.Constraints{Bandwidth: 5e6, CompressionRatio: 0.7, TransferWindows: []planner.TransferWindow{
		{When: "Mon-Thu 19:00-07:00", Rate: &rate}, {When: "Fri 19:00-24:00", Rate: &rate}, {When: "Sat-Sun 00:00-24:00", Rate: &rate}, {When: "Mon 00:00-07:00", Rate: &rate}}}
	a, err := assess.New(assess.Options{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	h := host("Microsoft Windows Server 2016 Standard", "x86_64", "bios")
	h.Disks = append(h.Disks, planner.Disk{Name: "data", ProvisionedBytes: 48e12, UsedBytes: 40e12})
	r := a.Host(&h)
	if !r.OfflineSeeding || !strings.Contains(r.SeedingNote, "years") {
		t.Errorf("want offline seeding over years, got %v %q (%.0f h)", r.OfflineSeeding, r.SeedingNote, r.TransferHours)
	}
	// 40.04 TB * 0.7 * 8 = 2.24e14 bits over 5 Mbit/s for 108 of 168 hours a week = 19,357 h, 2.2 years.
	if r.TransferHours < 19300 || r.TransferHours > 19400 {
		t.Errorf("transfer %.0f h, want about 19,357 h", r.TransferHours)
	}
}

func TestBadOptions(t *testing.T) {
	_, err := assess.New(assess.Options{Target: "aws", Region: "mars-1", Families: []string{"z9"}, Headroom: -1})
	for _, want := range []string{`target: "aws"`, `families: "z9"`, "headroom"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v does not mention %q", err, want)
		}
	}
	_, err = assess.New(assess.Options{Region: "mars-1"})
	if err == nil || !strings.Contains(err.Error(), `region: "mars-1"`) {
		t.Errorf("err = %v", err)
	}
}

func TestEstateTotalsAndDeterminism(t *testing.T) {
	e, _ := estate.Generate(estate.Options{Hosts: 800, Seed: 5})
	a, err := assess.New(assess.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := a.Estate(e)
	sum := 0
	for _, n := range rep.Totals.ByStatus {
		sum += n
	}
	if sum != 800 || rep.Totals.Hosts != 800 || len(rep.Results) != 800 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if rep.Totals.ByStatus[assess.NotReady] == 0 || rep.Totals.ByStatus[assess.ReadyWithActions] == 0 || rep.Totals.ByStatus[assess.Ready] == 0 {
		t.Errorf("generated estate should have every readiness: %v", rep.Totals.ByStatus)
	}
	if !strings.Contains(rep.Totals.PriceSource, "pricing calculator") {
		t.Errorf("price source missing: %q", rep.Totals.PriceSource)
	}
	x, _ := json.Marshal(rep)
	y, _ := json.Marshal(a.Estate(e))
	if !bytes.Equal(x, y) {
		t.Error("not deterministic")
	}
	var buf bytes.Buffer
	if err := assess.WriteTable(&buf, rep); err != nil || !strings.Contains(buf.String(), "800 hosts for alibaba/cn-hangzhou") {
		t.Errorf("table: %v\n%s", err, buf.String()[:200])
	}
}
