-- Runs examples/unlua/BP_MoonforgeClient.lua as UnLua would: the module from UnLua.Class(), an
-- actor instance, ReceiveBeginPlay, ReceiveTick every frame, ReceiveEndPlay, against a running
-- server. Usage: lua unlua_example_test.lua <port>
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. dir .. "../examples/unlua/?.lua;" .. package.path

local T = require("testing")
local socket = require("socket")

local port = assert(tonumber(arg[1]), "usage: lua unlua_example_test.lua <port>")

-- The part of UnLua the example uses.
UnLua = { Class = function() return {} end }
local BP = require("BP_MoonforgeClient")

T.test("the UnLua actor logs in, joins the arena, moves and gets state from ReceiveTick", function()
  local actor = setmetatable({ Host = "127.0.0.1", Port = port, DeviceId = "unlua-" .. os.time() }, { __index = BP })
  actor:ReceiveBeginPlay()
  local frames = 0
  local function tick_until(cond)
    for _ = 1, 1000 do
      actor:ReceiveTick(0.016)
      frames = frames + 1
      if cond() then
        return true
      end
      socket.sleep(0.005)
    end
    return false
  end
  T.check(tick_until(function() return actor.InRoom and actor.LastState end), "never in the room with a state")
  actor:Move(1, 0)
  T.check(tick_until(function() return actor.Position ~= nil end), "no position after a move")
  T.check(type(actor.Position.x) == "number", "position")
  actor:ReceiveEndPlay(0)
  T.equal(actor.Client.state, "closed", "client state after EndPlay")
end)

T.run("unlua")
