-- One request per line of a file of "<path>\t<token>" lines ("-" for no token), each line sent
-- once across all the wrk runs of a scenario: a run starts at the line number kept in
-- <offset_file> and leaves there the number of the first line it did not send. Threads take
-- lines in turn (thread t of n sends lines start+t, start+t+n, ...). With a body file, every
-- request carries that one JSON body.
-- wrk args: -- <rows_file> <offset_file> [METHOD=GET] [THREADS=1] [BODY_FILE|-]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local threads = {}
local number_thread = setup

function setup(thread)
  number_thread(thread)
  threads[#threads + 1] = thread
end

local rows = nil
local body = nil

function init(args)
  offset_file = args[2]
  method = args[3] or "GET"
  step = tonumber(args[4] or "1")
  if args[5] and args[5] ~= "" and args[5] ~= "-" then
    local b = assert(io.open(args[5], "rb"))
    body = b:read("*a")
    b:close()
  end
  local f = io.open(offset_file, "r")
  start = f and tonumber(f:read("*l") or "0") or 0
  if f then f:close() end
  rows = {}
  for line in io.lines(args[1]) do
    local path, token = line:match("^([^\t]+)\t?(.*)$")
    if path then
      local headers = {}
      if token ~= "" and token ~= "-" then headers["Authorization"] = "Bearer " .. token end
      if body then headers["Content-Type"] = "application/json" end
      rows[#rows + 1] = {path, headers}
    end
  end
  if #rows == 0 then error("no lines in " .. args[1]) end
  sent = 0
end

function request()
  local row = rows[(start + (tid or 0) + sent * step) % #rows + 1]
  sent = sent + 1
  return wrk.format(method, row[1], row[2], body)
end

local print_summary = done

function done(summary, latency, requests)
  local first, most, file = 0, 0, nil
  for _, thread in ipairs(threads) do
    first = thread:get("start")
    most = math.max(most, thread:get("sent") * thread:get("step"))
    file = thread:get("offset_file")
  end
  if file then
    local f = assert(io.open(file, "w"))
    f:write(string.format("%d\n", first + most))
    f:close()
  end
  print_summary(summary, latency, requests)
end
