-- Drivers parking: each connection starts a session (POST /v1/sessions with a fresh
-- Idempotency-Key) and the next request of its thread stops a started one
-- (POST /v1/sessions/{id}/stop). Each thread owns its own share of the (space, driver)
-- pairs, so no two starts race for one space. Counts are printed at the end. In a
-- scale-out run QRPARK_LOAD_SLICE of QRPARK_LOAD_SLICES wrk instances run at once, one per
-- qrpark process, and the pairs are split between all their threads.
dofile(os.getenv("QRPARK_LOAD_DATA"))

local threads = {}
function setup(thread)
  thread:set("part", #threads)
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("QRPARK_LOAD_THREADS") or "2")
  local slice = tonumber(os.getenv("QRPARK_LOAD_SLICE") or "0")
  local parts = nthreads * tonumber(os.getenv("QRPARK_LOAD_SLICES") or "1")
  part = slice * nthreads + part
  free, stops, index = {}, {}, {}
  starts, stopped, failed, seq = 0, 0, 0, 0
  for i = 1, #spaces do
    if (i - 1) % parts == part then table.insert(free, i) end
    index[spaces[i].id] = i
  end
  run = string.format("%x", os.time())
end

function request()
  local s = table.remove(stops, 1)
  if s then
    return wrk.format("POST", "/v1/sessions/" .. s.id .. "/stop",
      { ["Authorization"] = "Bearer " .. drivers[s.i] })
  end
  local i = table.remove(free)
  if i == nil then
    return wrk.format("GET", "/healthz")
  end
  seq = seq + 1
  return wrk.format("POST", "/v1/sessions", {
    ["Authorization"] = "Bearer " .. drivers[i],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "load-" .. run .. "-" .. part .. "-" .. seq,
  }, '{"qr":"' .. spaces[i].qr .. '"}')
end

function response(status, headers, body)
  local space = body:match('"space_id":"([^"]+)"')
  if status == 201 and space then
    starts = starts + 1
    table.insert(stops, { id = body:match('"id":"([^"]+)"'), i = index[space] })
  elseif status == 200 and space then
    stopped = stopped + 1
    table.insert(free, index[space])
  elseif status ~= 200 then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local s, t, f = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("starts")
    t = t + thread:get("stopped")
    f = f + thread:get("failed")
  end
  local secs = summary.duration / 1e6
  io.write(string.format("starts %d stops %d failed %d start+stop/s %.1f p99_ms %.2f\n",
    s, t, f, (s + t) / secs, latency:percentile(99) / 1000))
end
