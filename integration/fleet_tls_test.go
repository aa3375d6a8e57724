package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a throwaway authority, a server certificate for 127.0.0.1
// and a client certificate, as PEM files in a directory of the test's.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	p := testPKI{ca: filepath.Join(dir, "ca.pem"), serverCert: filepath.Join(dir, "server.pem"),
		serverKey: filepath.Join(dir, "server.key"), clientCert: filepath.Join(dir, "client.pem"),
		clientKey: filepath.Join(dir, "client.key")}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "corral test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", kder)
	}
	leaf(2, x509.ExtKeyUsageServerAuth, p.serverCert, p.serverKey)
	leaf(3, x509.ExtKeyUsageClientAuth, p.clientCert, p.clientKey)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})))
}

// startRedisTLS starts a redis-server that speaks TLS only, with p's
// server certificate, and asks clients for a certificate p's authority
// signed (tls-auth-clients, Redis's default).
func startRedisTLS(t *testing.T, p testPKI) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		missingTool(t, "redis-server is not installed (scripts/test installs it)")
	}
	r := &redisServer{t: t, port: freePort(t), dir: t.TempDir()}
	// The last --port wins: no plain TCP port, TLS on r.port.
	r.args = []string{"--port", "0", "--tls-port", itoa(r.port), "--tls-cert-file", p.serverCert,
		"--tls-key-file", p.serverKey, "--tls-ca-cert-file", p.ca}
	r.start()
	t.Cleanup(r.kill)
	return r
}

// TestFleetStoreTLS: two corrals share bans through a Redis that speaks
// TLS only (rediss://), trusting the authority given with ?ca= and
// showing the client certificate given with &cert=&key=; without the
// authority (the system's), or with a CA file that is not there, corral
// stops at start with the reason. (Without a client certificate the
// server hangs up after the handshake, with an alert that may arrive
// after the reset: that looks like a store that does not answer, and
// corral starts without it.)
func TestFleetStoreTLS(t *testing.T) {
	p := newTestPKI(t)
	r := startRedisTLS(t, p)
	base := fmt.Sprintf("rediss://127.0.0.1:%d/0", r.port)
	full := base + "?ca=" + url.QueryEscape(p.ca) + "&cert=" + url.QueryEscape(p.clientCert) + "&key=" + url.QueryEscape(p.clientKey)
	app := []string{"-w", "1", testdata("wsgiapp.py") + ":application"}
	var fleet []*guardServer
	for range 2 {
		fleet = append(fleet, startGuard(t, fmt.Sprintf("store = %q\n", full), nil, app...))
	}
	for _, g := range fleet {
		eventually(t, 10*time.Second, "the store connected over TLS", func() bool {
			return strings.Contains(g.log.String(), "guard store connected")
		})
	}
	if out, code := runCorral(t, "bans", "add", "127.0.0.40", "--for", "1h", "--admin-bind", fleet[0].admin); code != 0 {
		t.Fatalf("corral bans add: exit %d:\n%s", code, out)
	}
	eventually(t, 5*time.Second, "the ban on the other instance", func() bool { return refused(fleet[1], "127.0.0.40") })
	if out, _ := runCorral(t, "status", "--admin-bind", fleet[1].admin); !strings.Contains(out, "guard store "+base) {
		t.Errorf("corral status does not show the store:\n%s", out)
	}

	for _, tc := range []struct{ url, want string }{
		// The system's authorities do not know the test's.
		{base + "?cert=" + url.QueryEscape(p.clientCert) + "&key=" + url.QueryEscape(p.clientKey), "certificate signed by unknown authority"},
		{base + "?ca=" + url.QueryEscape(p.ca+".missing"), "ca: open "},
	} {
		out, code := runCorral(t, "-b", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--python", pythonBin, "--admin-bind", "off",
			"--guard-store", tc.url, app[2])
		if code != 2 || !strings.Contains(out, tc.want) || strings.Contains(out, "worker ready") {
			t.Errorf("--guard-store %s: exit %d, want 2 and %q, no worker:\n%s", tc.url, code, tc.want, out)
		}
	}
}
