-- One fixed JSON body (e.g. PUT /api/users/preferences) sent with rotating bearer tokens.
-- wrk args: -- <tokens_file|-> <body_file> [METHOD=PUT]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  build_requests(args[3] or "PUT", args[1], args[2], nil)
end
