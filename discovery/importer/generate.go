package importer

import (
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/xuri/excelize/v2"
)

// RVTools column headers the generator writes, as RVTools 4.x names them.
var (
	rvInfoHeader = []string{"VM", "Powerstate", "Template", "DNS Name", "CPUs", "Memory", "NICs", "Disks",
		"Provisioned MiB", "In Use MiB", "Primary IP Address", "Firmware", "OS according to the configuration file",
		"OS according to the VMware Tools", "VM UUID", "Host", "Cluster", "Datacenter"}
	rvDiskHeader      = []string{"VM", "Powerstate", "Disk", "Capacity MiB", "Thin", "VM UUID"}
	rvPartitionHeader = []string{"VM", "Powerstate", "Disk", "Capacity MiB", "Consumed MiB", "Free MiB", "VM UUID"}
	rvNetworkHeader   = []string{"VM", "Powerstate", "NIC label", "Network", "Connected", "Mac Address", "IPv4 Address", "VM UUID"}
)

// rvFixture produces the rows of a synthetic RVTools export: n VMs with
// one or two disks, partitions and one NIC each, deterministic for a seed.
type rvFixture struct {
	n   int
	rng *rand.Rand
}

func (g *rvFixture) each(fn func(sheet string, rec []string)) {
	oses := []string{"CentOS 7 (64-bit)", "Red Hat Enterprise Linux 8 (64-bit)", "Ubuntu Linux (64-bit)",
		"Microsoft Windows Server 2019 (64-bit)", "SUSE Linux Enterprise 15 (64-bit)"}
	for i := 1; i <= g.n; i++ {
		name := fmt.Sprintf("vm%05d", i)
		uuid := fmt.Sprintf("4211%04x-%04x-%04x-%04x-%012x", i>>16, i&0xffff, g.rng.IntN(0x10000), g.rng.IntN(0x10000), g.rng.Int64N(1<<48))
		power := "poweredOn"
		if i%17 == 0 {
			power = "poweredOff"
		}
		disks := 1 + i%2
		diskMiB := []int{40960 + 1024*(i%64), 102400}
		prov := 0
		for d := 0; d < disks; d++ {
			prov += diskMiB[d]
		}
		ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
		mac := fmt.Sprintf("00:50:56:%02x:%02x:%02x", (i>>16)&255, (i>>8)&255, i&255)
		firmware := "bios"
		if i%3 == 0 {
			firmware = "efi"
		}
		os := oses[i%len(oses)]
		fn(sheetVInfo, []string{name, power, "False", name + ".corp.local", fmt.Sprint(1 << (i % 4)), fmt.Sprint(2048 << (i % 4)),
			"1", fmt.Sprint(disks), fmt.Sprint(prov + 4096), fmt.Sprint(prov / 3), ip, firmware, os, os, uuid,
			fmt.Sprintf("esx%02d.corp.local", i%40), fmt.Sprintf("cluster-%d", i%8), "dc-1"})
		for d := 0; d < disks; d++ {
			fn(sheetVDisk, []string{name, power, fmt.Sprintf("Hard disk %d", d+1), fmt.Sprint(diskMiB[d]), "True", uuid})
			consumed := diskMiB[d] * (20 + g.rng.IntN(60)) / 100
			fn(sheetVPartition, []string{name, power, fmt.Sprintf("/data%d", d), fmt.Sprint(diskMiB[d] - 10), fmt.Sprint(consumed),
				fmt.Sprint(diskMiB[d] - 10 - consumed), uuid})
		}
		fn(sheetVNetwork, []string{name, power, "Network adapter 1", fmt.Sprintf("VLAN%d", 100+i%20), "True", mac, ip, uuid})
	}
}

var sheetNames = map[string]string{sheetVInfo: "vInfo", sheetVDisk: "vDisk", sheetVPartition: "vPartition", sheetVNetwork: "vNetwork"}
var sheetHeaders = map[string][]string{sheetVInfo: rvInfoHeader, sheetVDisk: rvDiskHeader, sheetVPartition: rvPartitionHeader, sheetVNetwork: rvNetworkHeader}
var sheetOrder = []string{sheetVInfo, sheetVDisk, sheetVPartition, sheetVNetwork}

// GenerateRVToolsCSV writes a synthetic n-VM RVTools export as
// RVTools_tab<sheet>.csv files in dir and returns their paths.
func GenerateRVToolsCSV(dir string, n int, seed uint64) ([]string, error) {
	files := map[string]*os.File{}
	writers := map[string]*csv.Writer{}
	var paths []string
	for _, s := range sheetOrder {
		p := filepath.Join(dir, "RVTools_tab"+sheetNames[s]+".csv")
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		files[s], writers[s] = f, csv.NewWriter(f)
		if err := writers[s].Write(sheetHeaders[s]); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	var werr error
	(&rvFixture{n: n, rng: rand.New(rand.NewPCG(seed, 1))}).each(func(sheet string, rec []string) {
		if werr == nil {
			werr = writers[sheet].Write(rec)
		}
	})
	for _, s := range sheetOrder {
		writers[s].Flush()
		if err := writers[s].Error(); err != nil && werr == nil {
			werr = err
		}
		if err := files[s].Close(); err != nil && werr == nil {
			werr = err
		}
	}
	return paths, werr
}

// GenerateRVToolsXLSX writes the same export as one workbook with the four
// sheets, streaming rows so that generating 20,000 VMs stays small.
func GenerateRVToolsXLSX(path string, n int, seed uint64) error {
	f := excelize.NewFile()
	defer f.Close()
	streams := map[string]*excelize.StreamWriter{}
	rows := map[string]int{}
	for i, s := range sheetOrder {
		name := sheetNames[s]
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				return err
			}
		} else if _, err := f.NewSheet(name); err != nil {
			return err
		}
		sw, err := f.NewStreamWriter(name)
		if err != nil {
			return err
		}
		streams[s] = sw
		if err := sw.SetRow("A1", toAny(sheetHeaders[s])); err != nil {
			return err
		}
		rows[s] = 1
	}
	var werr error
	(&rvFixture{n: n, rng: rand.New(rand.NewPCG(seed, 1))}).each(func(sheet string, rec []string) {
		if werr != nil {
			return
		}
		rows[sheet]++
		cell, _ := excelize.CoordinatesToCellName(1, rows[sheet])
		werr = streams[sheet].SetRow(cell, toAny(rec))
	})
	if werr != nil {
		return werr
	}
	for _, s := range sheetOrder {
		if err := streams[s].Flush(); err != nil {
			return err
		}
	}
	return f.SaveAs(path)
}

func toAny(rec []string) []any {
	out := make([]any, len(rec))
	for i, v := range rec {
		out[i] = v
	}
	return out
}
