-- The cluster tests' room on a game node: it records the presence callbacks of its players, whose
-- sessions live on a proxy of their own.
local probe = mf.room_type("probe", { tick_hz = 0, keep_empty = true })

function probe.on_create(room)
  room.state.events = {}
end

local function record(room, player, what)
  local events = room.state.events
  events[#events + 1] = player.id .. ":" .. what
end

function probe.on_disconnect(room, player) record(room, player, "disconnect") end
function probe.on_reconnect(room, player) record(room, player, "reconnect") end
function probe.on_leave(room, player, reason) record(room, player, "leave-" .. reason) end

function probe.on_call(room, name, args)
  return table.concat(room.state.events, ",")
end

mf.handle("RoomJoinReq", function(ctx, req)
  local room_id = mf.room.create("probe")
  mf.room.join(room_id, ctx.player_id)
  return "RoomJoinAck", { room_id = room_id, node = mf.node }
end)

mf.handle("RoomEventsReq", function(ctx, req)
  return "RoomEventsAck", { events = mf.room.call(req.room_id, "events") }
end)

mf.handle("OnlineReq", function(ctx, req)
  local online, connected = mf.player.online(req.player)
  return "OnlineAck", { state = (online and "online" or "offline") .. (connected and ",connected" or "") }
end)
