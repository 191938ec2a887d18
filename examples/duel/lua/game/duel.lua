-- Duel's room (examples/duel): two players, best of three rounds of rock-paper-scissors. Picks
-- arrive as room messages; the 1 Hz tick decides a round once both picks are in. The winner and
-- the loser are saved with mf.db; leaving a running duel (or a session that expired) forfeits it.
local duel = mf.room_type("duel", { tick_hz = 1, max_players = 2, messages = { "duel.PickReq" } })

local WINS = 2 -- rounds to win
local beats = { rock = "scissors", paper = "rock", scissors = "paper" }

local function opponent(room, id)
  for pid, p in pairs(room.players) do
    if pid ~= id then return p end
  end
end

local function record(player_id, field)
  local key = "duel/record/" .. player_id
  local r = mf.db.get(key) or { wins = 0, losses = 0 }
  r[field] = r[field] + 1
  mf.db.put(key, r)
end

local function finish(room, winner, loser, reason)
  room.state.over = true
  record(winner, "wins")
  record(loser, "losses")
  room:broadcast("duel.Over", { winner = winner, reason = reason })
  room:close()
end

function duel.on_create(room)
  room.state.round = 0
end

function duel.on_join(room, player)
  player.wins = 0
  local other = opponent(room, player.id)
  if other then
    room.state.round = 1
    room:send(other.id, "duel.Matched", { room_id = room.id, opponent = player.id })
    room:send(player.id, "duel.Matched", { room_id = room.id, opponent = other.id })
  end
  return { round = room.state.round }
end

function duel.on_message(room, player, name, msg)
  if room.state.round == 0 then mf.error(1411, "waiting for an opponent") end
  if not beats[msg.pick] then mf.error(mf.code.BAD_REQUEST, "pick rock, paper or scissors") end
  if player.pick then mf.error(1412, "already picked in round " .. room.state.round) end
  player.pick = msg.pick
  return "duel.PickAck", { round = room.state.round }
end

function duel.on_tick(room)
  if room.state.over or room.state.round == 0 then return end
  local a, b
  for _, p in pairs(room.players) do
    if a then b = p else a = p end
  end
  if not (a and b and a.pick and b.pick) then return end
  local winner = ""
  if beats[a.pick] == b.pick then
    winner, a.wins = a.id, a.wins + 1
  elseif beats[b.pick] == a.pick then
    winner, b.wins = b.id, b.wins + 1
  end
  room:send(a.id, "duel.RoundResult", { round = room.state.round, winner = winner, pick = a.pick, opponent_pick = b.pick })
  room:send(b.id, "duel.RoundResult", { round = room.state.round, winner = winner, pick = b.pick, opponent_pick = a.pick })
  a.pick, b.pick = nil, nil
  room.state.round = room.state.round + 1
  if a.wins == WINS then
    finish(room, a.id, b.id, "won")
  elseif b.wins == WINS then
    finish(room, b.id, a.id, "won")
  end
end

function duel.on_disconnect(room, player)
  player.away = true
  local other = opponent(room, player.id)
  if other then room:send(other.id, "duel.OpponentState", { opponent = player.id, connected = false }) end
end

function duel.on_reconnect(room, player)
  player.away = nil
  local other = opponent(room, player.id)
  if other then room:send(other.id, "duel.OpponentState", { opponent = player.id, connected = true }) end
end

function duel.on_leave(room, player, reason)
  local other = opponent(room, player.id)
  if other and room.state.round > 0 and not room.state.over then
    finish(room, other.id, player.id, "forfeit")
  end
end

-- Asked by the lobby with mf.room.call.
function duel.on_call(room, name, args)
  if name == "status" then
    local me, other = room.players[args.player_id], opponent(room, args.player_id)
    if not me then mf.error(1404, "not in this duel") end
    return {
      round = room.state.round,
      wins = me.wins,
      opponent = other and other.id or "",
      opponent_wins = other and other.wins or 0,
      opponent_connected = other ~= nil and not other.away,
    }
  elseif name == "cancel" then
    room:close()
    return true
  end
  mf.error(mf.code.BAD_REQUEST, "unknown call " .. name)
end
