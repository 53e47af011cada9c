package importer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/discovery"
)

func FuzzParseSSLine(f *testing.F) {
	for _, s := range []string{
		`ESTAB 0 0 10.0.0.5:22 10.0.0.9:51234 users:(("sshd",pid=5678,fd=3))`,
		`LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=1,fd=4))`,
		`tcp ESTAB 0 0 [::ffff:10.0.0.5]:443 [::ffff:10.0.0.7]:5000`,
		`LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*`,
		`ESTAB 0 0 a:b c:d users:(("`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := ParseSSLine(line)
		if err == nil && (s.State == "" || s.LocalPort < 0 || s.LocalPort > 65535 || s.RemotePort < 0 || s.RemotePort > 65535 || s.LocalAddr == "") {
			t.Fatalf("accepted %q as %+v", line, s)
		}
	})
}

func FuzzParseNetstatLine(f *testing.F) {
	for _, s := range []string{
		`tcp 0 0 10.1.0.9:1521 10.1.0.5:40122 ESTABLISHED 2002/oracle`,
		`tcp6 0 0 :::80 :::* LISTEN 999/nginx: master`,
		`  TCP    10.0.0.4:3389    10.0.0.8:50000    ESTABLISHED     1044`,
		`tcp 0 0 0.0.0.0:22 0.0.0.0:* LISTEN -`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := ParseNetstatLine(line)
		if err == nil && (s.State == "" || s.LocalPort < 0 || s.LocalPort > 65535 || s.RemotePort < 0 || s.RemotePort > 65535) {
			t.Fatalf("accepted %q as %+v", line, s)
		}
	})
}

// checkImport feeds data to an importer under tight caps and checks the
// bookkeeping holds whatever the input: every row is accepted, rejected or
// skipped, every rejected row is reported with its row number, nothing
// stored holds a NUL byte or bytes that are not UTF-8, and a refused file
// leaves nothing behind.
func checkImport(t *testing.T, name string, data []byte) {
	im := New(Limits{MaxBytes: 1 << 20, MaxRows: 2000, MaxErrors: 100}, clock)
	err := im.Add(name, bytes.NewReader(data))
	res := im.Finish()
	if err != nil {
		if len(res.Records)+len(res.Connections) != 0 {
			t.Fatalf("refused file kept %d records", len(res.Records))
		}
		return
	}
	reported := map[string]map[string]bool{}
	for _, e := range res.Errors {
		if e.File == "" || e.Reason == "" {
			t.Fatalf("row error without file or reason: %+v", e)
		}
		file, sheet, _ := strings.Cut(e.File, "#") // xlsx errors name file#sheet
		if reported[file] == nil {
			reported[file] = map[string]bool{}
		}
		// An estate numbers hosts and connections apart.
		list := ""
		if l, _, ok := strings.Cut(e.Column, "."); ok && (l == "hosts" || l == "connections") {
			list = l
		}
		reported[file][fmt.Sprint(sheet, list, e.Row)] = true
	}
	for _, s := range res.Files {
		if s.Accepted+s.Rejected+s.Skipped != s.Rows {
			t.Fatalf("summary does not add up: %+v", s)
		}
		// good + reported = total: no row is dropped without a word.
		if res.ErrorsDropped == 0 && len(reported[s.File]) < s.Rejected {
			t.Fatalf("%d rows rejected but %d reported: %+v %+v", s.Rejected, len(reported[s.File]), s, res.Errors)
		}
		if s.Kind == KindHostsCSV && len(res.Records) != s.Accepted {
			t.Fatalf("%d records for %d accepted rows", len(res.Records), s.Accepted)
		}
		if (s.Kind == KindHostsCSV || s.Kind == KindConnectionsCSV) && !bytes.ContainsAny(data, "\"\r") {
			// Without quotes a row is a line: every non-blank line after
			// the header is a row.
			lines := 0
			for i, l := range bytes.Split(data, []byte("\n")) {
				if i > 0 && len(l) > 0 {
					lines++
				}
			}
			if s.Rows != lines {
				t.Fatalf("%d rows counted for %d lines", s.Rows, lines)
			}
		}
	}
	for _, r := range res.Records {
		if r.Name == "" {
			t.Fatalf("record without a name: %+v", r)
		}
	}
	checkClean(t, res)
	_ = discovery.Normalise(res.Records, res.Connections)
}

func FuzzHostsCSV(f *testing.F) {
	seed, _ := os.ReadFile("testdata/hosts.csv")
	f.Add(seed)
	f.Add([]byte("id,name\n\"unterminated,x\n"))
	f.Add([]byte("id,name,ip\nh1,\"web01,10.0.0.1\nh2,web02,10.0.0.2\nh3,web\xff03,10.0.0.3\nh4,web\x0004,10.0.0.4\n"))
	f.Add([]byte("name,ip,mac,cpus\nweb,1.2.3.4;::1,00:11:22:33:44:55,1e3\n"))
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, "hosts.csv", data) })
}

func FuzzConnectionsCSV(f *testing.F) {
	seed, _ := os.ReadFile("testdata/connections.csv")
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, "connections.csv", data) })
}

func FuzzRVToolsCSV(f *testing.F) {
	for _, s := range []string{"vInfo", "vDisk", "vPartition", "vNetwork"} {
		seed, _ := os.ReadFile("testdata/rvtools/RVTools_tab" + s + ".csv")
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, "RVTools_tabvInfo.csv", data) })
}

func FuzzRVToolsXLSX(f *testing.F) {
	dir := f.TempDir()
	p := filepath.Join(dir, "seed.xlsx")
	if err := GenerateRVToolsXLSX(p, 3, 1); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	f.Add([]byte("PK\x03\x04 not really a zip"))
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, "export.xlsx", data) })
}

func FuzzCapture(f *testing.F) {
	ss, _ := os.ReadFile("testdata/web01.ss.txt")
	ns, _ := os.ReadFile("testdata/capture-db.txt")
	f.Add("web01.ss.txt", ss)
	f.Add("db01.netstat.txt", ns)
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if _, err := Detect(name, data); err != nil {
			return
		}
		checkImport(t, name, data)
	})
}

func FuzzEstateJSON(f *testing.F) {
	seed, _ := os.ReadFile("testdata/estate.json")
	f.Add(seed)
	f.Add([]byte(`{"hosts":[{"id":"a","name":"a","cpus":1e40}]}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkImport(t, "estate.json", data) })
}
