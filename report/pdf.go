package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Chromium is the browser that prints the report; FERRY_CHROMIUM overrides it.
func Chromium() string {
	if p := os.Getenv("FERRY_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "chromium"
}

// WritePDF writes the HTML report to a file in a temporary directory and
// prints it to PDF with headless Chromium, then copies the PDF to out. The
// HTML streams to disk, so the server's memory does not grow with the
// estate; Chromium's own memory is its process's.
func WritePDF(ctx context.Context, out interface{ Write([]byte) (int, error) }, src Source, lang string) error {
	dir, err := os.MkdirTemp("", "ferry-report-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	htmlPath := filepath.Join(dir, "report.html")
	f, err := os.Create(htmlPath)
	if err != nil {
		return err
	}
	if err := WriteHTML(ctx, f, src, lang); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	pdfPath := filepath.Join(dir, "report.pdf")
	if err := PrintPDF(ctx, htmlPath, pdfPath, dir); err != nil {
		return err
	}
	pf, err := os.Open(pdfPath)
	if err != nil {
		return err
	}
	defer pf.Close()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := pf.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	return nil
}

// PrintPDF runs headless Chromium on an HTML file.
func PrintPDF(ctx context.Context, htmlPath, pdfPath, profileDir string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(profileDir, "profile"), "--no-pdf-header-footer", "--print-to-pdf="+pdfPath,
		"file://"+htmlPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("chromium print-to-pdf: %v: %s", err, tail(stderr.String(), 600))
	}
	if st, err := os.Stat(pdfPath); err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium wrote no PDF: %s", tail(stderr.String(), 600))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
