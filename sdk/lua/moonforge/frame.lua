-- Frames of protocol v1 (docs/protocol.md): a 4-byte length, then msg_id (2 bytes), flags
-- (2 bytes), seq (4 bytes) and the payload, all big-endian. encode builds one; a Reader cuts a
-- byte stream that arrives in pieces of any size into frames.
local errors = require("moonforge.errors")

local floor = math.floor
local byte, char, sub = string.byte, string.char, string.sub

local M = {}

M.LENGTH_SIZE = 4
M.HEADER_SIZE = 8
-- DEFAULT_MAX_LENGTH is the default maximum of the length field (1 MiB), as on the server.
M.DEFAULT_MAX_LENGTH = 1048576
-- FLAG_REPLY marks a reply to the request with the same seq; no other flag bit is defined.
M.FLAG_REPLY = 1

local function u16(v)
  return char(floor(v / 256), v % 256)
end

local function u32(v)
  return char(floor(v / 16777216), floor(v / 65536) % 256, floor(v / 256) % 256, v % 256)
end

-- encode returns the frame in stream form (with its length prefix). msg_id and flags are
-- integers in [0, 65535], seq in [0, 2^32); payload is a string (may be empty).
function M.encode(msg_id, flags, seq, payload)
  payload = payload or ""
  return u32(M.HEADER_SIZE + #payload) .. u16(msg_id) .. u16(flags) .. u32(seq) .. payload
end

local Reader = {}
Reader.__index = Reader

-- new_reader returns a Reader that refuses frames whose length field exceeds max_length.
-- A Reader belongs to one connection.
function M.new_reader(max_length)
  return setmetatable({ buf = "", pos = 1, max = max_length or M.DEFAULT_MAX_LENGTH }, Reader)
end

-- feed appends bytes received from the stream.
function Reader:feed(data)
  if data == nil or data == "" then
    return
  end
  if self.pos > #self.buf then
    self.buf, self.pos = data, 1
  elseif self.pos > 1 then
    self.buf, self.pos = sub(self.buf, self.pos) .. data, 1
  else
    self.buf = self.buf .. data
  end
end

-- buffered returns how many bytes are fed but not yet returned as frames.
function Reader:buffered()
  return #self.buf - self.pos + 1
end

-- next returns the next whole frame as { msg_id, flags, seq, payload }; nil when more bytes are
-- needed; or nil and an error (MALFORMED_FRAME or FRAME_TOO_LARGE) when the stream breaks the
-- frame format, after which the stream cannot be read any further.
function Reader:next()
  if self.err then
    return nil, self.err
  end
  local buf, p = self.buf, self.pos
  local avail = #buf - p + 1
  if avail < 4 then
    return nil
  end
  local b1, b2, b3, b4 = byte(buf, p, p + 3)
  local length = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  if length < M.HEADER_SIZE then
    self.err = errors.new(errors.ErrorCode.MALFORMED_FRAME, "frame length " .. length .. " is below 8")
    return nil, self.err
  end
  if length > self.max then
    self.err = errors.new(errors.ErrorCode.FRAME_TOO_LARGE,
      string.format("frame length %.0f exceeds the maximum %d", length, self.max))
    return nil, self.err
  end
  if avail < 12 then
    return nil
  end
  local m1, m2, f1, f2, s1, s2, s3, s4 = byte(buf, p + 4, p + 11)
  local flags = f1 * 256 + f2
  if flags > 1 then
    self.err = errors.new(errors.ErrorCode.MALFORMED_FRAME, string.format("unknown flag bits 0x%04x", flags - flags % 2))
    return nil, self.err
  end
  if avail < 4 + length then
    return nil
  end
  self.pos = p + 4 + length
  return {
    msg_id = m1 * 256 + m2,
    flags = flags,
    seq = ((s1 * 256 + s2) * 256 + s3) * 256 + s4,
    payload = sub(buf, p + 12, p + 3 + length),
  }
end

return M
