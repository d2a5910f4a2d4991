-- Rotating JSON bodies, one per line (e.g. POST /api/auth/login credentials), no bearer token.
-- wrk args: -- <bodies_file> [METHOD=POST]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  build_requests(args[2] or "POST", nil, nil, args[1])
end
