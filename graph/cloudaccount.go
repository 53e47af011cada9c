package graph

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ferry-migrate/ferry/ent"
	"github.com/ferry-migrate/ferry/ent/cloudaccount"
	"github.com/ferry-migrate/ferry/graph/model"
	"github.com/ferry-migrate/ferry/internal/secrets"
	"github.com/ferry-migrate/ferry/internal/viewer"
)

// minFreeBytes is the free space below which the local driver's check fails:
// less than this cannot hold one ordinary system disk.
const minFreeBytes = 1 << 30

// checkAccount runs the checks for a cloud account. The local driver's are
// real (write, sparse allocation, free space in the directory the driver
// uses); for alibaba and openstack only the stored credentials can be
// checked in this build, and the missing driver is reported as a failed
// check rather than passed over.
func (r *Resolver) checkAccount(ctx context.Context, a *ent.CloudAccount) []*model.CheckResult {
	var out []*model.CheckResult
	add := func(name string, err error, okMsg string) {
		if err != nil {
			out = append(out, &model.CheckResult{Name: name, Ok: false, Message: err.Error()})
			return
		}
		out = append(out, &model.CheckResult{Name: name, Ok: true, Message: okMsg})
	}
	switch a.Provider {
	case cloudaccount.ProviderLocal:
		dir := filepath.Join(r.DataDir, "cloud")
		add("directory", checkWritable(dir), dir+" is writable")
		sparse, err := checkSparse(dir)
		add("sparse files", err, sparse)
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			add("free space", fmt.Errorf("cannot read free space of %s: %v", dir, err), "")
		} else {
			free := int64(st.Bavail) * int64(st.Bsize)
			if free < minFreeBytes {
				add("free space", fmt.Errorf("only %s free in %s; at least %s needed", bytesText(free), dir, bytesText(minFreeBytes)), "")
			} else {
				add("free space", nil, bytesText(free)+" free")
			}
		}
	default:
		if len(a.SecretCiphertext) == 0 {
			add("credentials", fmt.Errorf("no AccessKey secret is stored"), "")
		} else if _, err := r.Secrets.Open(a.SecretCiphertext, cloudAccountAD(a.TenantID, a.ID)); err != nil {
			add("credentials", fmt.Errorf("the stored secret cannot be opened with this server's key (was keys/secrets.key replaced?)"), "")
		} else {
			add("credentials", nil, "AccessKey "+a.AccessKeyID+" stored, secret sealed and readable")
		}
		add("cloud API", fmt.Errorf("the %s driver is not part of this build: the credentials were not verified against the cloud", a.Provider), "")
	}
	return out
}

func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create %s: %v", dir, err)
	}
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %v", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		return fmt.Errorf("cannot write in %s: %v", dir, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot fsync in %s: %v", dir, err)
	}
	return nil
}

// checkSparse makes a 1 GiB file with one written block and confirms the
// filesystem allocated only that block: target disks are sparse files.
func checkSparse(dir string) (string, error) {
	f, err := os.CreateTemp(dir, ".sparse-*")
	if err != nil {
		return "", fmt.Errorf("cannot create a test file in %s: %v", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		return "", fmt.Errorf("cannot size a test file: %v", err)
	}
	if _, err := f.WriteAt([]byte("ferry"), 512<<20); err != nil {
		return "", fmt.Errorf("cannot write a test file: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return "", fmt.Errorf("cannot stat a test file: %v", err)
	}
	if used := st.Blocks * 512; used > 64<<20 {
		return "", fmt.Errorf("the filesystem of %s does not keep files sparse (%s allocated for 5 bytes written)", dir, bytesText(used))
	}
	return "a 1 GiB file with one written block allocates " + bytesText(st.Blocks*512), nil
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// summarise turns the checks into the account's one-line check message.
func summarise(checks []*model.CheckResult) (bool, string) {
	ok := true
	var parts []string
	for _, c := range checks {
		if !c.Ok {
			ok = false
			parts = append(parts, c.Name+": "+c.Message)
		}
	}
	if ok {
		return true, "all checks passed"
	}
	return false, strings.Join(parts, "; ")
}

// ResealCloudSecrets moves cloud secrets sealed before they were bound to
// their row (associated data naming the tenant only) to the row-bound
// associated data (account id and tenant), and reports how many it moved.
// It runs at start-up, after the schema migrations, so that only row-bound
// secrets exist afterwards and Open never needs the old form. A secret that
// opens under neither (another key, a corrupted row) is left as it is and
// counted in unreadable: checkCloudAccount then reports it.
func ResealCloudSecrets(ctx context.Context, client *ent.Client, box *secrets.Box) (moved, unreadable int, err error) {
	ctx = viewer.SystemContext(ctx)
	last := 0
	for {
		page, err := client.CloudAccount.Query().Where(cloudaccount.IDGT(last), cloudaccount.SecretCiphertextNotNil()).
			Order(ent.Asc(cloudaccount.FieldID)).Limit(500).All(ctx)
		if err != nil {
			return moved, unreadable, fmt.Errorf("reseal cloud secrets: %w", err)
		}
		for _, a := range page {
			last = a.ID
			if len(a.SecretCiphertext) == 0 {
				continue
			}
			if _, err := box.Open(a.SecretCiphertext, cloudAccountAD(a.TenantID, a.ID)); err == nil {
				continue
			}
			plain, err := box.Open(a.SecretCiphertext, legacyCloudAccountAD(a.TenantID))
			if err != nil {
				unreadable++
				continue
			}
			// Conditional on the old ciphertext: a concurrent writer wins.
			n, err := client.CloudAccount.Update().
				Where(cloudaccount.ID(a.ID), cloudaccount.SecretCiphertext(a.SecretCiphertext)).
				SetSecretCiphertext(box.Seal(plain, cloudAccountAD(a.TenantID, a.ID))).Save(ctx)
			if err != nil {
				return moved, unreadable, fmt.Errorf("reseal cloud account %d: %w", a.ID, err)
			}
			moved += n
		}
		if len(page) < 500 {
			return moved, unreadable, nil
		}
	}
}
