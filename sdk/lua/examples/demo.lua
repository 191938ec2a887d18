-- The demo game from plain Lua: guest login, chat, the arena, statistics. Run a server with
-- `make run`, then, from sdk/lua:
--
--   lua5.4 examples/demo.lua [host] [port]
--
-- It prints what it receives and exits 0 when every step got its answer.
package.path = "./?.lua;" .. package.path

local mf = require("moonforge")

local host, port = arg[1] or "127.0.0.1", tonumber(arg[2] or "7001")
local client = mf.Client.new({ host = host, port = port, schema = require("moonforge.generated.demo") })

client:on_event(function(event, info)
  print("event", event, info.reason or info.code or "")
end)
client:on("ChatMessage", function(msg, seq)
  print(string.format("push %d: %s says %q", seq, msg.from, msg.text))
end)

assert(client:connect())

local ok = false
-- The scenario runs in a coroutine, so each request reads like a function call; update() below
-- resumes it as the replies arrive.
client:spawn(function()
  local ack, err = client:login_guest("demo-device-" .. os.time())
  assert(ack, tostring(err))
  print("logged in as", ack.player_id)

  local history = assert(client:chat_history({ limit = 5 }))
  print("chat history:", #history.messages, "messages")
  assert(client:chat_send({ text = "hello from Lua" }))

  local _, empty = client:chat_send({ text = "" })
  print("an empty message is refused:", empty.name, empty.code, empty.message)

  local room = assert(client:arena_join({}))
  print("joined room", room.room_id, "at", room.pos.x, room.pos.y)
  for _, dir in ipairs({ { x = 1 }, { y = 1 }, { x = -1 }, { y = -1 } }) do
    local moved = assert(client:arena_move({ dir = dir }))
    print("moved to", moved.pos.x, moved.pos.y)
  end
  for _ = 1, 10 do -- the room pushes its state 20 times a second
    local state, seq = assert(client:await_push("ArenaState"))
    print("push " .. seq .. ": tick", state.tick, #state.players, "players")
  end
  local left = assert(client:arena_leave({}))
  print("left after", left.moves, "moves")
  local stats = assert(client:stats({}))
  print("stats: chats", stats.stats.chats_sent, "joins", stats.stats.arena_joins, "moves", stats.stats.arena_moves)
  ok = true
end)

-- A game calls client:update() once per frame; a script can let run_until do it.
local co_done = client:run_until(function() return ok end, 30)
client:close()
os.exit(co_done and 0 or 1)
