-- Lobby chat. All chat requests go to one actor (key "chat"), so the history in this module is
-- the whole lobby's; it is saved to the store before each reply.
local counter = require("shared.counter")

local chat = mf.module("lobby.chat")
local MAX_TEXT = 200    -- bytes
local KEEP = 100        -- messages kept in the history
local PER_SECOND = 1    -- messages a player may send per second on average...
local BURST = 5         -- ...and in a burst: every message is pushed to every player online

-- allow takes one message from the player's token bucket (chat.buckets, kept with the module
-- across reloads); a full bucket is forgotten, so the table holds only recent senders.
local function allow(player)
  chat.buckets = chat.buckets or {}
  local now = mf.now() / 1000
  local b = chat.buckets[player] or { tokens = BURST, at = now }
  b.tokens = math.min(BURST, b.tokens + (now - b.at) * PER_SECOND)
  b.at = now
  if b.tokens < 1 then
    chat.buckets[player] = b
    return false, (1 - b.tokens) / PER_SECOND
  end
  b.tokens = b.tokens - 1
  chat.buckets[player] = b
  return true
end

mf.timer.every(60, function()
  local now = mf.now() / 1000
  for player, b in pairs(chat.buckets or {}) do
    if b.tokens + (now - b.at) * PER_SECOND >= BURST then chat.buckets[player] = nil end
  end
end)

local function history()
  if not chat.history then
    local saved = mf.db.get("chat/history") or {}
    chat.history = saved.messages or {}
    chat.next_index = saved.next_index or 1
  end
  return chat.history
end

mf.handle("ChatSendReq", function(ctx, req)
  if req.text == "" then mf.error(1001, "empty message") end
  if #req.text > MAX_TEXT then mf.error(1002, "message too long (at most " .. MAX_TEXT .. " bytes)") end
  local ok, wait = allow(ctx.player_id)
  if not ok then
    mf.error(1003, string.format("slow down: wait %.1f s (chat takes bursts of %d, then %g per second)", wait, BURST, PER_SECOND))
  end
  local list = history()
  local msg = { index = chat.next_index, from = ctx.player_id, text = req.text, sent_at_ms = mf.now() }
  chat.next_index = chat.next_index + 1
  list[#list + 1] = msg
  if #list > KEEP then table.remove(list, 1) end
  mf.db.put("chat/history", { messages = list, next_index = chat.next_index })
  counter.add("chat/sent/" .. ctx.player_id, 1)
  mf.push_all("ChatMessage", msg)
  return "ChatSendAck", { index = msg.index }
end, { key = "chat" })

mf.handle("ChatHistoryReq", function(ctx, req)
  local list = history()
  local limit = req.limit
  if limit == 0 or limit > #list then limit = #list end
  local out = {}
  for i = #list - limit + 1, #list do out[#out + 1] = list[i] end
  return "ChatHistoryAck", { messages = out }
end, { key = "chat" })
