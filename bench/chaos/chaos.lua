-- wrk script for the chaos benchmark. A share of requests crash their
-- worker (CHAOS_CRASH_PCT, default 1) or hang past corral's timeout
-- (CHAOS_HANG_PCT, default 1); the rest hit the Flask app's "/". wrk does
-- not say which request a response answers, so statuses and requests sent
-- are counted separately: only the faulty ones should fail.
local crash = tonumber(os.getenv("CHAOS_CRASH_PCT") or "1")
local hang = tonumber(os.getenv("CHAOS_HANG_PCT") or "1")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6) + #threads)
  sent = {}
  statuses = {}
end

function request()
  local r = math.random() * 100
  local path = "/"
  if r < crash then
    path = "/__crash"
  elseif r < crash + hang then
    path = "/__hang"
  end
  sent[path] = (sent[path] or 0) + 1
  return wrk.format("GET", path)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local s, st = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("sent")) do s[k] = (s[k] or 0) + v end
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
  end
  for k, v in pairs(s) do io.write(string.format("SENT %s %d\n", k, v)) end
  for k, v in pairs(st) do io.write(string.format("STATUS %d %d\n", k, v)) end
  io.write(string.format("ERRORS connect=%d read=%d write=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
