-- Bodiless requests rotating through bearer tokens.
-- wrk args: -- <tokens_file|-> [METHOD=GET]   (one token per line; "-" sends no Authorization)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  build_requests(args[2] or "GET", args[1], nil, nil)
end
