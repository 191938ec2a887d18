-- An UnLua actor that keeps a Moonforge connection and plays the demo game. Bind it to an Actor
-- Blueprint (BP_MoonforgeClient) with UnLua (GetModuleName returns "BP_MoonforgeClient"; put
-- this file in Content/Script/, next to moonforge.lua and the moonforge/ directory). Optional
-- Blueprint variables: Host (String), Port (Integer), DeviceId (String).
local mf = require("moonforge")

---@type BP_MoonforgeClient_C
local M = UnLua.Class()

function M:ReceiveBeginPlay()
  self.Client = mf.Client.new({
    host = self.Host ~= nil and self.Host ~= "" and self.Host or "127.0.0.1",
    port = self.Port ~= nil and self.Port > 0 and self.Port or 7001,
    schema = require("moonforge.generated.demo"),
  })
  local client = self.Client

  client:on_event(function(event, info)
    print("[moonforge]", event, info.reason or info.name or "")
    if event == "login_required" then
      self:Login() -- the session expired while we were away: a new one
    end
  end)
  client:on("ChatMessage", function(msg)
    print("[moonforge] chat", msg.from, msg.text)
  end)
  client:on("ArenaState", function(msg)
    self.LastState = msg -- read it in Tick, or move actors from it here
  end)

  client:connect()
  self:Login()
end

-- Login logs in, then joins the arena; the coroutine waits for each reply without blocking the
-- game thread.
function M:Login()
  local client = self.Client
  client:spawn(function()
    local device = self.DeviceId ~= nil and self.DeviceId ~= "" and self.DeviceId or "unreal-device-default"
    local ack, err = client:login_guest(device)
    if not ack then
      print("[moonforge] login failed", err.name, err.message)
      return
    end
    print("[moonforge] logged in as", ack.player_id)
    local room, jerr = client:arena_join({})
    if room then
      print("[moonforge] joined", room.room_id)
      self.InRoom = true
    else
      print("[moonforge] join failed", jerr.name, jerr.message)
    end
  end)
end

-- Move sends one arena move; call it from input, for example. Callbacks run in ReceiveTick.
function M:Move(x, y)
  if not self.InRoom then
    return
  end
  self.Client:arena_move({ dir = { x = x, y = y } }, function(err, ack)
    if err then
      print("[moonforge] move failed", err.name, err.message)
    else
      self.Position = ack.pos
    end
  end)
end

function M:ReceiveTick(DeltaSeconds)
  -- All network work and every callback happen here, on the game thread, without blocking.
  self.Client:update()
end

function M:ReceiveEndPlay(EndPlayReason)
  if self.Client then
    self.Client:close()
  end
end

return M
