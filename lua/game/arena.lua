-- The arena room: up to 8 players on a 100 x 100 field; every tick (20 Hz) all players receive
-- the state. A player's moves are saved when it leaves the room.
--
-- The state message is built once per room and updated in place: each player's entry shares its
-- position table, so a tick allocates nothing and only encodes what is there.
local counter = require("shared.counter")

local arena = mf.room_type("arena", { tick_hz = 20, max_players = 8, messages = { "ArenaMoveReq" } })
local SIZE = 100
local STEP = 1

local function clamp(v) return math.max(0, math.min(SIZE, v)) end

-- rebuild refreshes the sorted roster and the list of player entries after a join or a leave.
local function rebuild(room)
  local ids = {}
  for id in pairs(room.players) do ids[#ids + 1] = id end
  table.sort(ids)
  local entries = {}
  for i, id in ipairs(ids) do entries[i] = room.players[id].entry end
  room.state.roster = ids
  room.state.msg.players = entries
end

function arena.on_create(room)
  room.state.msg = { room_id = room.id, tick = 0, players = {} }
  room.state.roster = {}
end

function arena.on_join(room, player)
  player.pos = { x = math.random(0, SIZE), y = math.random(0, SIZE) }
  player.moves = 0
  player.entry = { id = player.id, pos = player.pos, hp = 100 } -- an ArenaPlayer
  rebuild(room)
  room:broadcast("ArenaEvent", { room_id = room.id, player_id = player.id, kind = "JOINED" }, player.id)
  return { pos = player.pos, players = room.state.roster }
end

function arena.on_leave(room, player, reason)
  if player.moves > 0 then counter.add("arena/moves/" .. player.id, player.moves) end
  room.players[player.id] = nil -- the engine removes it too; rebuild must not see it
  rebuild(room)
  room:broadcast("ArenaEvent", { room_id = room.id, player_id = player.id, kind = "LEFT" }, player.id)
  return { moves = player.moves }
end

function arena.on_message(room, player, name, msg)
  -- name is always "ArenaMoveReq": the only message this room type takes.
  local dx, dy = msg.dir and msg.dir.x or 0, msg.dir and msg.dir.y or 0
  local len = math.sqrt(dx * dx + dy * dy)
  if len > 1 then dx, dy = dx / len, dy / len end
  player.pos.x = clamp(player.pos.x + dx * STEP)
  player.pos.y = clamp(player.pos.y + dy * STEP)
  player.moves = player.moves + 1
  return "ArenaMoveAck", { pos = player.pos }
end

function arena.on_tick(room, dt)
  room.state.msg.tick = room.tick
  room:broadcast("ArenaState", room.state.msg)
end
