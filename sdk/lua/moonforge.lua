-- Moonforge client SDK for Lua 5.1 to 5.4 and UnLua. See README.md.
--
--   local mf = require("moonforge")
--   local client = mf.Client.new{ host = "127.0.0.1", port = 7001, schema = require("moonforge.generated.demo") }
--   client:connect()
--   -- every tick: client:update()
local errors = require("moonforge.errors")

local M = {
  VERSION = "1.0.0",
  -- PROTOCOL_VERSION is the version of docs/protocol.md this SDK speaks.
  PROTOCOL_VERSION = 1,
  ErrorCode = errors.ErrorCode,
  error_name = errors.name,
  Schema = require("moonforge.schema"),
  codec = require("moonforge.codec"),
  frame = require("moonforge.frame"),
}

-- The client needs LuaSocket only when it is used, so that the codec works without it.
setmetatable(M, {
  __index = function(t, k)
    if k == "Client" then
      local Client = require("moonforge.client")
      rawset(t, "Client", Client)
      return Client
    end
  end,
})

return M
