-- Errors with the codes of docs/protocol.md. Every error the client reports, from the server (an
-- Error reply) or from the client itself (a timeout, a lost connection, a table that does not
-- encode), is a table { code = n, name = "BAD_REQUEST", message = "...", retry_after_ms = n,
-- remote = true when the server sent it }, printable with tostring.
local M = {}

-- ErrorCode maps the framework's code names to their numbers. Codes from 1000 up belong to the
-- application (their name is "APP_<code>").
M.ErrorCode = {
  MALFORMED_FRAME = 1,
  FRAME_TOO_LARGE = 2,
  UNKNOWN_MESSAGE = 3,
  DECODE_FAILED = 4,
  UNAUTHENTICATED = 5,
  FORBIDDEN = 6,
  RATE_LIMITED = 7,
  UNAVAILABLE = 8,
  TIMEOUT = 9,
  INTERNAL = 10,
  RESUME_FAILED = 11,
  KICKED_DUPLICATE_LOGIN = 12,
  IDLE_TIMEOUT = 13,
  SERVER_SHUTDOWN = 14,
  BAD_REQUEST = 15,
}

local names = {}
for name, code in pairs(M.ErrorCode) do
  names[code] = name
end

-- name returns the name of a code: the framework's name, "APP_<code>" from 1000 up, else
-- "CODE_<code>".
function M.name(code)
  if names[code] then
    return names[code]
  end
  if type(code) == "number" and code >= 1000 then
    return "APP_" .. string.format("%d", code)
  end
  return "CODE_" .. tostring(code)
end

local Error = {}
Error.__index = Error
function Error.__tostring(e)
  return string.format("%s (%d): %s", e.name, e.code, e.message)
end

-- new returns an error table; remote is true for an Error the server sent.
function M.new(code, message, retry_after_ms, remote)
  return setmetatable({
    code = code,
    name = M.name(code),
    message = message or "",
    retry_after_ms = retry_after_ms or 0,
    remote = remote or false,
  }, Error)
end

-- is_error reports whether v is an error table made by new.
function M.is_error(v)
  return getmetatable(v) == Error
end

return M
