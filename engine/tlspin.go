package engine

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrFingerprint is returned (wrapped) when a gateway presents a certificate
// other than the pinned one.
var ErrFingerprint = errors.New("gateway certificate does not match the pinned fingerprint")

// Fingerprint is the SHA-256 of a certificate's DER bytes, in lower-case hex.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// normalizeFingerprint accepts hex with or without colons and a "sha256:" prefix.
func normalizeFingerprint(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	return strings.ReplaceAll(s, ":", "")
}

// LoadOrCreateCertificate returns the gateway's TLS identity from
// dir/gateway.crt and dir/gateway.key, creating a self-signed ECDSA P-256
// certificate for hosts (plus localhost and 127.0.0.1) on first start. The
// certificate is not meant to chain anywhere: agents pin its fingerprint.
func LoadOrCreateCertificate(dir string, hosts []string) (tls.Certificate, string, error) {
	crt, key := filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key")
	if c, err := tls.LoadX509KeyPair(crt, key); err == nil {
		return c, Fingerprint(c.Certificate[0]), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, "", fmt.Errorf("load gateway certificate from %s: %w", dir, err)
	}
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ferry-gateway"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &pk.PublicKey, pk)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	kb, err := x509.MarshalECPrivateKey(pk)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	c, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return c, Fingerprint(der), nil
}

// PinnedTLSConfig returns a client TLS config that accepts exactly the
// certificate whose SHA-256 fingerprint is fp, whatever name or CA it has:
// the session's trust comes from the control plane, not from a PKI.
func PinnedTLSConfig(fp string) (*tls.Config, error) {
	want := normalizeFingerprint(fp)
	if len(want) != 64 {
		return nil, fmt.Errorf("%w: fingerprint %q: want the 64 hex digits of a SHA-256 (as printed by ferry gateway)", ErrInvalid, fp)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: no certificate presented", ErrFingerprint)
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != want {
				return fmt.Errorf("%w: got %s, pinned %s", ErrFingerprint, got, want)
			}
			return nil
		},
	}, nil
}
