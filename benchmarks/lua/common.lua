-- Shared parts of the sevenp wrk scripts: pre-built requests rotated round-robin, JSON summary.
-- Each variant script loads this file from its own directory, then defines init(args).

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  if #lines == 0 then error("no lines in " .. path) end
  return lines
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local function given(value)
  return value ~= nil and value ~= "" and value ~= "-"
end

local thread_counter = 0

-- Main state: number the threads so each starts at a different offset of the rotation.
function setup(thread)
  thread:set("tid", thread_counter)
  thread_counter = thread_counter + 1
end

local prepared = nil
local cursor = 0

-- Pre-builds one request per token (or per body line): request() then only indexes a table.
function build_requests(method, tokens_path, body_path, bodies_path)
  local tokens = given(tokens_path) and read_lines(tokens_path) or nil
  local bodies = given(bodies_path) and read_lines(bodies_path) or nil
  local body = given(body_path) and read_file(body_path) or nil
  local n = math.max(tokens and #tokens or 1, bodies and #bodies or 1)
  prepared = {}
  for i = 1, n do
    local headers = {}
    if tokens then headers["Authorization"] = "Bearer " .. tokens[(i - 1) % #tokens + 1] end
    local b = body
    if bodies then b = bodies[(i - 1) % #bodies + 1] end
    if b then headers["Content-Type"] = "application/json" end
    prepared[i] = wrk.format(method, nil, headers, b)
  end
  cursor = ((tid or 0) * 7919) % n
end

function request()
  cursor = cursor % #prepared + 1
  return prepared[cursor]
end

-- Main state, after the run: one machine-readable line for benchmarks/wrk.py.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
