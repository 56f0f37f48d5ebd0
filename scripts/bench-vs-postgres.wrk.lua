-- wrk script of scripts/bench-vs-postgres.sh: POST /v1/events with a body
-- whose every event carries a fresh random UUID (version 4) on every request
-- (with idempotent ingest, a repeated body would measure the dedup path, not
-- the record path).
--
-- WRK_BODY names the body template: `{"events": [...]}` with `@ID@` where
-- each event's id goes (`grpc_load --write-http-body FILE`). The template is
-- split once; a request is the pieces joined with new ids.
--
-- A response counts as ok when it is 200 with no failed event
-- (`"failed":[]`); other 2xx (some events failed) and non-2xx are counted
-- apart. done() prints one machine-readable line:
--   wrk_result requests_sent=N responses=N ok=N partial=N non2xx=N
--     socket_errors=N duration_s=S p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
--     ids_per_request=N client_cpu_ticks=N
-- where requests_sent - responses is what was in flight when wrk stopped
-- (maybe recorded, never answered), and client_cpu_ticks is wrk's own CPU
-- (user + system, in USER_HZ ticks).

local threads = {}
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end

local buf, headers
local rnd, fmt, concat = math.random, string.format, table.concat

local function uuid4()
  return fmt("%04x%04x-%04x-4%03x-%x%03x-%04x%04x%04x",
    rnd(0, 65535), rnd(0, 65535), rnd(0, 65535), rnd(0, 4095),
    rnd(8, 11), rnd(0, 4095), rnd(0, 65535), rnd(0, 65535), rnd(0, 65535))
end

local function seed()
  -- Each thread its own seed from the system's random source: threads
  -- seeded alike would send the same ids.
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(6)
  f:close()
  local s = 0
  for i = 1, #b do s = s * 256 + b:byte(i) end
  math.randomseed(s + tid)
end

function init(args)
  local path = assert(os.getenv("WRK_BODY"), "WRK_BODY (the body template) is not set")
  local f = assert(io.open(path, "rb"))
  local template = f:read("*a")
  f:close()
  -- buf holds the template's pieces at odd places; ids go at even ones.
  buf = {}
  local pos = 1
  while true do
    local s, e = template:find("@ID@", pos, true)
    if not s then break end
    buf[#buf + 1] = template:sub(pos, s - 1)
    buf[#buf + 1] = ""
    pos = e + 1
  end
  buf[#buf + 1] = template:sub(pos)
  nids = (#buf - 1) / 2 -- a global: done() reads it through threads[1]:get
  assert(nids > 0, "no @ID@ in " .. path)
  headers = { ["Content-Type"] = "application/json" }
  seed()
  sent, responses, ok, partial, non2xx = 0, 0, 0, 0, 0
  first_bad = ""
end

function request()
  for i = 2, 2 * nids, 2 do
    buf[i] = uuid4()
  end
  sent = sent + 1
  return wrk.format("POST", "/v1/events", headers, concat(buf))
end

function response(status, _, body)
  responses = responses + 1
  if status == 200 and body:find('"failed":[]', 1, true) then
    ok = ok + 1
    return
  end
  if status >= 200 and status < 300 then
    partial = partial + 1
  else
    non2xx = non2xx + 1
  end
  if first_bad == "" then
    first_bad = status .. " " .. body:sub(1, 300):gsub("%s+", " ")
  end
end

local function cpu_ticks()
  local f = io.open("/proc/self/stat", "rb")
  if not f then return 0 end
  local stat = f:read("*a")
  f:close()
  -- The fields after the command name: state is the first, utime and
  -- stime the 12th and 13th.
  local rest = stat:match("%) (.*)$") or ""
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)
end

function done(summary, latency, _)
  local t = { sent = 0, responses = 0, ok = 0, partial = 0, non2xx = 0 }
  local bad = ""
  for _, th in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + th:get(k) end
    if bad == "" then bad = th:get("first_bad") end
  end
  local e = summary.errors
  local ms = function(us) return us / 1000 end
  if bad ~= "" then
    io.write("wrk_first_bad_response ", bad, "\n")
  end
  io.write(fmt("wrk_result requests_sent=%d responses=%d ok=%d partial=%d non2xx=%d socket_errors=%d duration_s=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f ids_per_request=%d client_cpu_ticks=%d\n",
    t.sent, t.responses, t.ok, t.partial, t.non2xx,
    e.connect + e.read + e.write + e.timeout,
    summary.duration / 1e6,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency.max),
    threads[1]:get("nids") or 0, cpu_ticks()))
end
