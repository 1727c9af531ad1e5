-- wrk script for POST /occurrences and /occurrences/batch (one connection per thread).
-- Args: fragments.lua, seconds, batch size (0 = single POST), fingerprint pool, run prefix,
-- done-file. Occurrence ids are <run prefix 12 hex><thread 4 hex><counter 16 hex>, unique per
-- run; fingerprints are drawn from the pool so grouping happens. Each thread stops itself after
-- `seconds`, once its last answer is in, so nothing is left in flight when wrk exits.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}
local count = 0

function setup(thread)
  thread:set("index", count)
  count = count + 1
  table.insert(threads, thread)
end

function init(args)
  parts = dofile(args[1])
  seconds = tonumber(args[2])
  batch = tonumber(args[3])
  pool = tonumber(args[4])
  prefix = args[5] .. string.format("%04x", index)
  done_file = args[6]
  counter = 0
  accepted = 0
  answers = 0
  first = 0
  last = 0
  math.randomseed(index * 7919 + tonumber(string.sub(args[5], 1, 6), 16))
  path = batch > 0 and "/occurrences/batch" or "/occurrences"
end

local function one()
  counter = counter + 1
  local oid = prefix .. string.format("%016x", counter)
  local eid = "e" .. string.sub(oid, 2)
  local fp = "bench-fp-" .. math.random(0, pool - 1)
  return parts[1] .. '"' .. oid .. '"' .. parts[2] .. '"' .. fp .. '"' .. parts[3]
    .. '"' .. eid .. '"' .. parts[4]
end

function request()
  if first == 0 then first = now() end
  local body
  if batch > 0 then
    local items = {}
    for i = 1, batch do items[i] = one() end
    body = '{"occurrences":[' .. table.concat(items, ",") .. "]}"
  else
    body = one()
  end
  return wrk.format("POST", path, nil, body)
end

local function occurrences_of(body, word)
  local _, n = string.gsub(body, '"outcome":"' .. word .. '"', "")
  return n
end

function response(status, headers, body)
  answers = answers + 1
  if batch > 0 then
    if status == 200 then
      accepted = accepted + occurrences_of(body, "created") + occurrences_of(body, "grouped")
    end
  elseif status == 202 then
    accepted = accepted + 1
  end
  last = now()
  if last - first >= seconds then
    local f = io.open(done_file, "a")
    f:write(index, "\n")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local acc, ans, sent, t0, t1 = 0, 0, 0, math.huge, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    ans = ans + t:get("answers")
    sent = sent + t:get("counter")
    local f, l = t:get("first"), t:get("last")
    if f > 0 and f < t0 then t0 = f end
    if l > t1 then t1 = l end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"accepted":%d,"answers":%d,"items_sent":%d,"elapsed":%.6f,' ..
    '"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    acc, ans, sent, t1 - t0, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
