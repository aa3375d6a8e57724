package listen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, to dir/cert.pem and dir/key.pem, replacing them by rename as
// certificate tools do.
func writeCert(t *testing.T, dir, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem":  {Type: "EC PRIVATE KEY", Bytes: kb},
	} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// marker wraps the decrypted HTTP/1 stream, as the framing guard does.
type marker struct{ net.Conn }

// tlsServer serves, over TLS on 127.0.0.1, the protocol, scheme and
// whether the HTTP/1 stream went through the http1 wrapper.
func tlsServer(t *testing.T, certs *Certs) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wrapped atomic.Int64
	l := TLS(raw, certs.Config(), 5*time.Second, func(c net.Conn) net.Conn {
		wrapped.Add(1)
		return marker{c}
	}, slog.New(slog.DiscardHandler))
	srv := &http.Server{
		Handler: WithTLSState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			fmt.Fprintf(w, "%s %s wrapped=%d", r.Proto, scheme, wrapped.Load())
		})),
		ConnContext: ConnContext,
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return raw.Addr().String()
}

func client(pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestTLSProtocols(t *testing.T) {
	dir := t.TempDir()
	cert := writeCert(t, dir, "one")
	certs, err := LoadCerts(TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, certs)
	pool := x509.NewCertPool()
	pool.AddCert(cert)

	if got, want := get(t, client(pool, true), "https://"+addr+"/"), "HTTP/2.0 https wrapped=0"; got != want {
		t.Errorf("HTTP/2 client got %q, want %q", got, want)
	}
	if got, want := get(t, client(pool, false), "https://"+addr+"/"), "HTTP/1.1 https wrapped=1"; got != want {
		t.Errorf("HTTP/1.1 client got %q, want %q", got, want)
	}

	// TLS 1.1 is refused.
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Errorf("a TLS 1.1 handshake succeeded")
	}

	// Plain HTTP on the TLS port gets net/http's 400.
	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(pc)
	pc.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.0 400") {
		t.Errorf("plain HTTP to the TLS port: got %q, want a 400", b)
	}
}

func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	one := writeCert(t, dir, "one")
	certs, err := LoadCerts(TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go certs.Watch(ctx, 10*time.Millisecond)
	addr := tlsServer(t, certs)

	pool := x509.NewCertPool()
	pool.AddCert(one)
	old := client(pool, false)
	get(t, old, "https://"+addr+"/") // opens a keep-alive connection

	two := writeCert(t, dir, "two")
	deadline := time.Now().Add(5 * time.Second)
	for certs.Certificate().Subject.CommonName != "two" {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded within 5s of the files changing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The open connection goes on with the old certificate.
	get(t, old, "https://"+addr+"/")
	// New connections get the new one.
	pool2 := x509.NewCertPool()
	pool2.AddCert(two)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool2})
	if err != nil {
		t.Fatalf("handshake after the reload: %v", err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "two" {
		t.Errorf("new connection got certificate %q, want two", cn)
	}
	conn.Close()

	// A broken pair is refused and the current certificate stays.
	os.WriteFile(filepath.Join(dir, "key.pem"), []byte("not a key"), 0o600)
	if err := certs.Reload(); err == nil {
		t.Errorf("Reload of a broken key succeeded")
	}
	if cn := certs.Certificate().Subject.CommonName; cn != "two" {
		t.Errorf("after a failed reload the certificate is %q, want two", cn)
	}
}

func TestClientCerts(t *testing.T) {
	dir := t.TempDir()
	srvCert := writeCert(t, dir, "server")
	caDir := t.TempDir()
	writeCert(t, caDir, "client") // self-signed: its own authority
	pair, err := tls.LoadX509KeyPair(filepath.Join(caDir, "cert.pem"), filepath.Join(caDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCerts(TLSFiles{
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		CAFile: filepath.Join(caDir, "cert.pem"), ClientAuth: tls.RequireAndVerifyClientCert,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsServer(t, certs)
	pool := x509.NewCertPool()
	pool.AddCert(srvCert)
	with := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	if got := get(t, with, "https://"+addr+"/"); !strings.Contains(got, "https") {
		t.Errorf("with a client certificate: %q", got)
	}
	if _, err := client(pool, false).Get("https://" + addr + "/"); err == nil {
		t.Errorf("without a client certificate: request succeeded, want the handshake refused")
	}
}

// TestCertReloadFollowsSymlinkSwap: Kubernetes updates a mounted Secret by
// pointing the ..data symlink at a new directory; the files corral was
// given are links through it and never change themselves.
func TestCertReloadFollowsSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "..v1"), filepath.Join(dir, "..v2")
	for _, d := range []string{v1, v2} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeCert(t, v1, "one")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	certs, err := LoadCerts(TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cn := certs.Certificate().Subject.CommonName; cn != "one" {
		t.Fatalf("loaded %q, want one", cn)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go certs.Watch(ctx, 10*time.Millisecond)

	writeCert(t, v2, "two")
	// The swap as kubelet does it: a new link renamed over ..data.
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for certs.Certificate().Subject.CommonName != "two" {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded within 5s of the ..data symlink swap")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
