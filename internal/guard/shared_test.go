package guard

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// hub is a shared store in memory, as package fleet keeps one in Redis:
// every instance's memShared talks to it. Ban changes reach the other
// instances at once; jail windows and buckets follow the same rules as
// fleet's scripts, on the hub's clock.
type hub struct {
	mu         sync.Mutex
	now        func() time.Time
	down       bool
	bans       map[string]Change
	windows    map[string][]time.Time
	tat        map[string]time.Time
	members    []*memShared
	takeDelay  time.Duration // each Take call waits this long (a slow store)
	quiet      bool          // ban changes are stored but not delivered (a channel that lags)
	asked      int           // addresses Banned was asked about
	gate       chan struct{} // when not nil, Count waits until it is closed
	countCalls int
	counts     int // events counted
	takes      int // requests taken
}

func newHub(now func() time.Time) *hub {
	return &hub{now: now, bans: map[string]Change{}, windows: map[string][]time.Time{}, tat: map[string]time.Time{}}
}

func (h *hub) setDown(down bool) { h.mu.Lock(); h.down = down; h.mu.Unlock() }

type memShared struct {
	h     *hub
	id    string
	local Local
}

func (h *hub) member(id string) *memShared {
	m := &memShared{h: h, id: id}
	h.mu.Lock()
	h.members = append(h.members, m)
	h.mu.Unlock()
	return m
}

func (m *memShared) Start(l Local) { m.h.mu.Lock(); m.local = l; m.h.mu.Unlock() }
func (m *memShared) Up() bool      { m.h.mu.Lock(); defer m.h.mu.Unlock(); return !m.h.down }

func (m *memShared) publish(c Change) {
	h := m.h
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		return
	}
	if old, ok := h.bans[c.Addr]; ok && old.At.After(c.At) {
		h.mu.Unlock()
		return
	}
	h.bans[c.Addr] = c
	var others []Local
	for _, o := range h.members {
		if o != m && o.local != nil && !h.quiet {
			others = append(others, o.local)
		}
	}
	h.mu.Unlock()
	for _, l := range others {
		l.Apply(c)
	}
}

func (m *memShared) Put(b Ban) { m.publish(Change{Ban: b, At: b.Since, Origin: m.id}) }
func (m *memShared) Delete(addr string, at time.Time) {
	m.publish(Change{Ban: Ban{Addr: addr}, Deleted: true, At: at, Origin: m.id})
}

func (m *memShared) Count(_ context.Context, evs []Event) ([]int, error) {
	h := m.h
	h.mu.Lock()
	gate := h.gate
	h.countCalls++
	h.mu.Unlock()
	if gate != nil {
		<-gate
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, ErrDown
	}
	now := h.now()
	out := make([]int, len(evs))
	for i, e := range evs {
		k := e.Jail + " " + e.Addr
		var w []time.Time
		for _, t := range h.windows[k] {
			if now.Sub(t) < e.FindTime {
				w = append(w, t)
			}
		}
		w = append(w, now)
		out[i] = len(w)
		if len(w) >= e.MaxRetry {
			w = nil
		}
		h.windows[k] = w
		h.counts++
	}
	return out, nil
}

func (m *memShared) Take(_ context.Context, takes []Take) ([]time.Duration, error) {
	h := m.h
	time.Sleep(h.takeDelay)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, ErrDown
	}
	now := h.now()
	out := make([]time.Duration, len(takes))
	for i, t := range takes {
		k := t.Limit + " " + t.Addr
		interval := time.Duration(float64(time.Second) / t.Rate)
		tat := h.tat[k]
		if tat.Before(now) {
			tat = now
		}
		tat = tat.Add(time.Duration(t.N) * interval)
		h.tat[k] = tat
		out[i] = tat.Sub(now)
		h.takes += t.N
	}
	return out, nil
}

func (m *memShared) Push(context.Context) error  { return nil }
func (m *memShared) Flush(context.Context) error { return nil }

func (m *memShared) Banned(_ context.Context, addrs []string) ([]Change, error) {
	h := m.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, ErrDown
	}
	out := make([]Change, len(addrs))
	for i, a := range addrs {
		h.asked++
		out[i] = h.bans[a]
	}
	return out, nil
}
func (m *memShared) Stats() SharedStats { return SharedStats{Up: m.Up()} }

// newFleet starts n guards that share h and a clock.
func newFleet(t *testing.T, n int, mod func(*Config)) ([]*rig, *hub, *clock) {
	t.Helper()
	ck := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := newHub(ck.now)
	var rigs []*rig
	for i := range n {
		m := h.member(fmt.Sprintf("instance-%d", i))
		r := newRig(t, func(c *Config) {
			c.Now = ck.now
			c.Shared = m
			if mod != nil {
				mod(c)
			}
		})
		r.clock = ck
		rigs = append(rigs, r)
	}
	return rigs, h, ck
}

func banned(r *rig, addr string) bool {
	k, _ := ParseKey(addr)
	return r.g.bans.active(k, r.g.now) != nil
}

func TestSharedBansTravel(t *testing.T) {
	rigs, _, _ := newFleet(t, 3, nil)
	if _, err := rigs[0].g.Ban("192.0.2.50", time.Hour, "manual", "from the CLI"); err != nil {
		t.Fatal(err)
	}
	for i, r := range rigs {
		if w := r.do("192.0.2.50:1", "GET", "/", nil); w.Code != 403 {
			t.Errorf("instance %d: banned client got %d", i, w.Code)
		}
		if b := r.g.Bans(); len(b) != 1 || b[0].Reason != "from the CLI" || b[0].Jail != "manual" {
			t.Errorf("instance %d: bans %+v", i, b)
		}
	}
	// The app's ban is the fleet's too.
	rigs[1].g.AppBan("192.0.2.51", 60, "signup abuse")
	if !banned(rigs[2], "192.0.2.51") {
		t.Error("corral.ban() on one instance is not enforced on another")
	}
	// Lifted on one, lifted everywhere.
	if ok, err := rigs[2].g.Unban("192.0.2.50", "test"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	for i, r := range rigs {
		if banned(r, "192.0.2.50") {
			t.Errorf("instance %d still bans after the unban", i)
		}
	}
}

func TestSharedApplyRules(t *testing.T) {
	rigs, _, ck := newFleet(t, 1, func(c *Config) { c.Allow = hosts(t, "192.0.2.200") })
	g := rigs[0].g
	l := sharedLocal{g}
	now := ck.now()
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.60", Since: now, Until: now.Add(time.Hour), Jail: "probe", Offences: 1, Status: 403}, At: now, Origin: "b"})
	if !banned(rigs[0], "192.0.2.60") {
		t.Fatal("a ban from the fleet is not applied")
	}
	// An older change loses: neither an unban nor a ban from before the ban in force applies.
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.60"}, Deleted: true, At: now.Add(-time.Second), Origin: "b"})
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.60", Since: now.Add(-time.Minute), Until: now.Add(time.Minute), Jail: "auth", Status: 403}, Origin: "c"})
	if b := g.Bans(); len(b) != 1 || b[0].Jail != "probe" {
		t.Fatalf("older changes applied: %+v", b)
	}
	// A later one wins.
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.60", Since: now.Add(time.Second), Until: now.Add(2 * time.Hour), Jail: "manual", Status: 429}, Origin: "c"})
	if b := g.Bans(); len(b) != 1 || b[0].Jail != "manual" || b[0].Status != 429 {
		t.Fatalf("later ban not applied: %+v", b)
	}
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.60"}, Deleted: true, At: now.Add(2 * time.Second), Origin: "b"})
	if banned(rigs[0], "192.0.2.60") {
		t.Fatal("a later unban did not lift the ban")
	}
	// An allow-listed client is not banned here, whatever the fleet says.
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.200", Since: now, Until: now.Add(time.Hour), Jail: "manual", Status: 403}, Origin: "b"})
	if banned(rigs[0], "192.0.2.200") {
		t.Error("an allow-listed client was banned from the fleet")
	}
	// A ban that has ended counts for escalation only.
	l.Apply(Change{Ban: Ban{Addr: "192.0.2.61", Since: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour), Jail: "probe", Offences: 3, Status: 403}, Origin: "b"})
	k, _ := ParseKey("192.0.2.61")
	if banned(rigs[0], "192.0.2.61") || g.bans.history[k].count != 3 {
		t.Errorf("an ended ban: banned %v, history %+v", banned(rigs[0], "192.0.2.61"), g.bans.history[k])
	}
	if bs := (sharedLocal{g}).Bans(); len(bs) != 0 {
		t.Errorf("Local.Bans lists %+v, want none in force", bs)
	}
}

// TestSharedJailWindow: one probe on one instance and nine on another
// ban the client on all three.
func TestSharedJailWindow(t *testing.T) {
	rigs, _, _ := newFleet(t, 3, nil)
	for _, r := range rigs {
		r.g.SetRoutes(nil)
	}
	scanner := "192.0.2.70:1"
	rigs[0].do(scanner, "GET", "/probe-a", nil)
	for i := range 9 {
		rigs[1].do(scanner, "GET", fmt.Sprintf("/probe-b%d", i), nil)
	}
	// Counted before each answer went out, and the ban shared before the
	// tenth's: no waiting.
	if !banned(rigs[0], "192.0.2.70") || !banned(rigs[1], "192.0.2.70") || !banned(rigs[2], "192.0.2.70") {
		t.Fatal("the scanner is not banned on every instance")
	}
	b := rigs[2].g.Bans()
	if len(b) != 1 || b[0].Jail != "probe" || !strings.Contains(b[0].Reason, "10 probes") || !strings.Contains(b[0].Reason, "fleet") {
		t.Errorf("bans %+v", b)
	}
}

// TestSharedScanCutOffExactly: a scan spread round robin over two to six
// instances is cut off after maxretry probes, as against one instance,
// even when the channel that carries bans never delivers: the count that
// reaches maxretry is made, and its ban stored, before the answer goes
// out, and the instances that saw the client near the threshold ask the
// store before serving it (up to maxretry/2+1 instances, 6 here: the
// instance after the threshold saw the client at a count of
// maxretry+1-N). A client far from any threshold never makes
// an instance ask.
func TestSharedScanCutOffExactly(t *testing.T) {
	for _, n := range []int{2, 3, 6} {
		rigs, h, _ := newFleet(t, n, nil)
		h.quiet = true
		for _, r := range rigs {
			r.g.SetRoutes(nil)
		}
		// A legit client: a 404 and a 401 or two, pages on every instance.
		for i, r := range rigs {
			r.do("192.0.2.71:1", "GET", "/", nil)
			if i < 2 {
				r.do("192.0.2.71:1", "GET", fmt.Sprintf("/missing-%d", i), nil)
				r.do("192.0.2.71:1", "GET", "/login", nil)
			}
			r.do("192.0.2.71:1", "GET", "/2024", nil)
		}
		if h.asked != 0 {
			t.Fatalf("%d instances: the store was asked %d times about a legit client", n, h.asked)
		}
		answered := 0
		for i := range 40 {
			w := rigs[i%n].do("192.0.2.72:1", "GET", fmt.Sprintf("/probe-%d", i), nil)
			switch w.Code {
			case 404:
				answered++
			case 403:
			default:
				t.Fatalf("%d instances: probe %d answered %d", n, i, w.Code)
			}
		}
		if answered != 10 {
			t.Errorf("%d instances: %d probes answered, want 10 as against one instance", n, answered)
		}
		for i, r := range rigs {
			if !banned(r, "192.0.2.72") {
				t.Errorf("%d instances: instance %d does not ban the scanner", n, i)
			}
		}
	}
}

// TestSharedCountsBatched: answers that wait for the store while a call is
// in progress share the next call, so a flood of 4xx answers costs the
// store a few calls, not one each.
func TestSharedCountsBatched(t *testing.T) {
	rigs, h, _ := newFleet(t, 1, nil)
	g := rigs[0].g
	g.SetRoutes(nil)
	h.mu.Lock()
	h.gate = make(chan struct{})
	h.mu.Unlock()
	var wg sync.WaitGroup
	codes := make([]int, 51)
	do := func(i int) {
		defer wg.Done()
		codes[i] = rigs[0].do(fmt.Sprintf("192.0.2.%d:1", 100+i), "GET", "/missing", nil).Code
	}
	wg.Add(1)
	go do(0)
	waitFor(t, 5*time.Second, "the first count in progress", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.countCalls == 1
	})
	wg.Add(50)
	for i := 1; i <= 50; i++ {
		go do(i)
	}
	waitFor(t, 5*time.Second, "50 answers waiting", func() bool { return len(g.syncq) == 50 })
	close(h.gate)
	wg.Wait()
	for i, c := range codes {
		if c != 404 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Two events each (probe and errors), in two calls.
	if h.countCalls != 2 || h.counts != 2*51 {
		t.Errorf("%d calls counted %d events; want 2 calls, 102 events", h.countCalls, h.counts)
	}
}

// TestSharedQueueFullGoesOn: with the store stuck and the queue of
// requests waiting for it full, a request goes on without it.
func TestSharedQueueFullGoesOn(t *testing.T) {
	rigs, h, _ := newFleet(t, 1, nil)
	g := rigs[0].g
	g.SetRoutes(nil)
	h.mu.Lock()
	h.gate = make(chan struct{})
	h.mu.Unlock()
	var wg sync.WaitGroup
	defer func() { close(h.gate); wg.Wait() }()
	for i := range 1 + sharedSyncQueue {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rigs[0].do(fmt.Sprintf("10.1.%d.%d:1", i>>8, i&255), "GET", "/missing", nil)
		}()
		if i == 0 {
			waitFor(t, 5*time.Second, "the first count in progress", func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				return h.countCalls == 1
			})
		}
	}
	waitFor(t, 10*time.Second, "the queue full", func() bool { return len(g.syncq) == sharedSyncQueue })
	before := g.Stats().Store.Dropped
	if w := rigs[0].do("192.0.2.99:1", "GET", "/missing", nil); w.Code != 404 {
		t.Errorf("a request with the queue full: %d", w.Code)
	}
	if d := g.Stats().Store.Dropped - before; d != 2 {
		t.Errorf("%d updates dropped, want 2 (probe and errors)", d)
	}
}

// TestSharedRateLimit: a global limit holds across instances that each
// would admit the whole rate alone.
func TestSharedRateLimit(t *testing.T) {
	rigs, h, ck := newFleet(t, 3, func(c *Config) {
		c.GlobalRate = Limit{Rate: 10, Burst: 10}
		c.ClientRate = Limit{Rate: 10, Burst: 10}
		c.Jails[JailRateLimit].MaxRetry = 0
	})
	admitted := 0
	for i := range 300 {
		// 300 requests over 3 s, round robin, from 5 clients; the
		// verdict of each arrives before the next request.
		ck.add(10 * time.Millisecond)
		time.Sleep(3 * sharedDelay)
		w := rigs[i%3].do(fmt.Sprintf("192.0.2.%d:1", 80+i%5), "GET", "/", nil)
		if w.Code == 200 {
			admitted++
		} else if w.Code != 429 || w.Header().Get("Retry-After") == "" {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	// Alone, each instance admits its burst and then 10/s: 3×(10+30).
	// Together: a burst of 10, then 10/s for 3 s, plus what was admitted
	// before a verdict came back.
	t.Logf("%d requests admitted", admitted)
	if admitted < 38 || admitted > 44 {
		t.Errorf("%d requests admitted; want 40 (+10%%)", admitted)
	}
	// Every admitted request is reported twice: global and client.
	waitFor(t, time.Second, "every admitted request reported", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.takes == 2*admitted
	})
}

// TestSharedStoreSlowOrDown: a request that earns no jail event never
// waits for the store,
// and without it each instance keeps its local limits, jails and bans.
func TestSharedStoreSlowOrDown(t *testing.T) {
	rigs, h, _ := newFleet(t, 2, func(c *Config) {
		c.ClientRate = Limit{Rate: 1000, Burst: 1000}
		c.Jails[JailProbe].MaxRetry = 3
	})
	h.takeDelay = 200 * time.Millisecond
	for i := range 50 {
		t0 := time.Now()
		if w := rigs[0].do("192.0.2.90:1", "GET", "/", nil); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
		if d := time.Since(t0); d > 50*time.Millisecond {
			t.Fatalf("request %d took %v behind a slow store", i, d)
		}
	}
	if _, err := rigs[0].g.Ban("192.0.2.91", time.Hour, "manual", ""); err != nil {
		t.Fatal(err)
	}
	h.setDown(true)
	rigs[1].g.SetRoutes(nil)
	for i := range 3 {
		rigs[1].do("192.0.2.92:1", "GET", fmt.Sprintf("/p%d", i), nil)
	}
	if !banned(rigs[1], "192.0.2.92") {
		t.Error("the local jail did not ban while the store is down")
	}
	if banned(rigs[0], "192.0.2.92") {
		t.Error("a ban travelled while the store is down")
	}
	if !banned(rigs[1], "192.0.2.91") {
		t.Error("a ban from before the outage was lost")
	}
	if w := rigs[0].do("192.0.2.93:1", "GET", "/", nil); w.Code != 200 {
		t.Errorf("a legit client while the store is down: %d", w.Code)
	}
	st := rigs[0].g.Stats()
	if st.Store == nil || st.Store.Up {
		t.Errorf("stats: %+v", st.Store)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkGuardCommonPathShared is BenchmarkGuardCommonPath with a
// shared store: the request path must cost the same.
func BenchmarkGuardCommonPathShared(b *testing.B) {
	ck := &clock{t: time.Now()}
	h := newHub(ck.now)
	g, err := New(Config{Enabled: true, Jails: DefaultJails(), Now: ck.now, Shared: h.member("a")})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	for i := range 10000 {
		g.ban(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), time.Hour, "manual", "bench", 403, 0, false)
	}
	benchCommonPath(b, g)
}
