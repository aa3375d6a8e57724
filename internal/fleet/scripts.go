package fleet

import (
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"

	"corral/internal/guard"
)

// keys names the store's keys under one prefix.
type keys struct {
	prefix  string
	channel string // ban changes are published here
	banScan string // SCAN pattern of the ban keys
}

func newKeys(prefix string) keys {
	return keys{prefix: prefix, channel: prefix + ":bans", banScan: prefix + ":ban:{*}"}
}

// The client's address is the hash tag of its keys: {ADDR}.
func (k keys) ban(addr string) string        { return k.prefix + ":ban:{" + addr + "}" }
func (k keys) jail(jail, addr string) string { return k.prefix + ":jail:" + jail + ":{" + addr + "}" }

func (k keys) rate(limit, addr string) string {
	if addr == "" {
		return k.prefix + ":rate:" + limit
	}
	return k.prefix + ":rate:" + limit + ":{" + addr + "}"
}

// record is a ban change as the store keeps and publishes it: a ban, or
// with Deleted an unban. TS is when the change was made (the ban's
// start), in Unix milliseconds: the latest change of an address wins.
type record struct {
	Addr     string `json:"addr"`
	TS       int64  `json:"ts"`
	Deleted  bool   `json:"deleted,omitempty"`
	Until    int64  `json:"until,omitempty"` // Unix ms; 0 = never ends
	Jail     string `json:"jail,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Offences int    `json:"offences,omitempty"`
	Status   int    `json:"status,omitempty"`
	Origin   string `json:"origin"`
}

func banRecord(b guard.Ban, origin string) record {
	r := record{Addr: b.Addr, TS: b.Since.UnixMilli(), Jail: b.Jail, Reason: b.Reason, Offences: b.Offences,
		Status: b.Status, Origin: origin}
	if !b.Until.IsZero() {
		r.Until = b.Until.UnixMilli()
	}
	return r
}

func unbanRecord(addr string, at time.Time, origin string) record {
	return record{Addr: addr, TS: at.UnixMilli(), Deleted: true, Origin: origin}
}

// change is the record as the guard applies it.
func (r record) change() guard.Change {
	c := guard.Change{Deleted: r.Deleted, At: time.UnixMilli(r.TS), Origin: r.Origin,
		Ban: guard.Ban{Addr: r.Addr, Since: time.UnixMilli(r.TS), Jail: r.Jail, Reason: r.Reason,
			Offences: r.Offences, Status: r.Status}}
	if r.Until != 0 {
		c.Until = time.UnixMilli(r.Until)
	}
	return c
}

// ttl is how long the record's key lives from now; 0 = for ever, < 0 =
// not worth storing (a ban that ended more than keepEnded ago).
func (r record) ttl(now time.Time) time.Duration {
	switch {
	case r.Deleted:
		return keepUnbans
	case r.Until == 0:
		return 0
	}
	d := time.UnixMilli(r.Until).Add(keepEnded).Sub(now)
	if d <= 0 {
		return -1
	}
	return d
}

func (r record) encode() string {
	b, _ := json.Marshal(r) // plain fields: cannot fail
	return string(b)
}

// putScript stores a ban change unless the store holds a later one of the
// same address, empties the client's jail windows (the guard forgets a
// client's events when it bans or unbans it) and publishes the change.
//
//	KEYS[1]   the ban key; KEYS[2..] the client's jail windows
//	ARGV[1]   the record (JSON); ARGV[2] its ts; ARGV[3] TTL in ms (0 = none)
//	ARGV[4]   the channel
//
// It returns 1 when stored, 0 when a later change won.
var putScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and type(rec) == 'table' and tonumber(rec.ts) and tonumber(rec.ts) > tonumber(ARGV[2]) then
    return 0
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
`)

// countScript adds one event to a jail window, a sorted set of event
// times (the store's clock, in ms), and returns the events within
// findtime. The window is emptied when the count reaches maxretry (the
// client is banned), else it expires findtime after its last event.
//
//	KEYS[1]  the window
//	ARGV[1]  maxretry; ARGV[2] findtime in ms; ARGV[3] a member unique to this event
var countScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local findtime = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - findtime)
redis.call('ZADD', KEYS[1], now, ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], findtime)
end
return n
`)

// takeScript records n requests admitted by a rate limit in its GCRA
// bucket (the generic cell rate algorithm: the bucket is one number, the
// theoretical arrival time of the next request, on the store's clock in
// µs) and returns how far that time is ahead of the store's clock after
// them (the bucket's fill, in µs). The guard's own buckets are GCRA too:
// each instance sets its bucket to the fleet's, so what the instances let
// through before the answer reached them is paid back at once, and over
// time the fleet stays within the limit.
//
//	KEYS[1]  the bucket
//	ARGV[1]  n; ARGV[2] µs per request (1/rate)
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
return math.floor(tat - now)
`)

var allScripts = []*redis.Script{putScript, countScript, takeScript}
