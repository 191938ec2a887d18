-- The pure-Lua codec (see moonforge.codec): moonforge.encoder and moonforge.decoder. It keeps no
-- state; one instance may serve any number of clients.
local encoder = require("moonforge.encoder")
local decoder = require("moonforge.decoder")

local M = {}

-- new returns the pure-Lua codec; schema is unused, the compiled messages carry everything.
function M.new(_)
  return { name = "lua", encode = encoder.encode, decode = decoder.decode }
end

return M
