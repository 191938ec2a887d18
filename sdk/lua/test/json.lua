-- A small JSON reader for the tests: objects, arrays, strings (with \u escapes, surrogate pairs
-- included, to UTF-8), numbers (-0 keeps its sign), true, false, null (as json.null).
local M = {}

M.null = setmetatable({}, { __tostring = function() return "null" end })

local function utf8_char(cp)
  if cp < 128 then
    return string.char(cp)
  elseif cp < 2048 then
    return string.char(192 + math.floor(cp / 64), 128 + cp % 64)
  elseif cp < 65536 then
    return string.char(224 + math.floor(cp / 4096), 128 + math.floor(cp / 64) % 64, 128 + cp % 64)
  end
  return string.char(240 + math.floor(cp / 262144), 128 + math.floor(cp / 4096) % 64,
    128 + math.floor(cp / 64) % 64, 128 + cp % 64)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

function M.decode(s)
  local pos = 1
  local function fail(msg)
    error(string.format("json: %s at byte %d", msg, pos), 0)
  end
  local function ws()
    pos = string.find(s, "[^ \t\r\n]", pos) or #s + 1
  end
  local value
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = string.sub(s, pos, pos)
      if c == "" then
        fail("unterminated string")
      elseif c == '"' then
        pos = pos + 1
        return table.concat(out)
      elseif c == "\\" then
        local e = string.sub(s, pos + 1, pos + 1)
        if e == "u" then
          local cp = tonumber(string.sub(s, pos + 2, pos + 5), 16)
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and string.sub(s, pos, pos + 1) == "\\u" then
            local lo = tonumber(string.sub(s, pos + 2, pos + 5), 16)
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8_char(cp)
        else
          out[#out + 1] = ESCAPES[e] or fail("bad escape")
          pos = pos + 2
        end
      else
        local j = string.find(s, '["\\]', pos) or #s + 1
        out[#out + 1] = string.sub(s, pos, j - 1)
        pos = j
      end
    end
  end
  function value()
    ws()
    local c = string.sub(s, pos, pos)
    if c == "{" then
      pos = pos + 1
      local obj = {}
      ws()
      if string.sub(s, pos, pos) == "}" then
        pos = pos + 1
        return obj
      end
      while true do
        ws()
        local k = str()
        ws()
        if string.sub(s, pos, pos) ~= ":" then fail("want :") end
        pos = pos + 1
        obj[k] = value()
        ws()
        c = string.sub(s, pos, pos)
        pos = pos + 1
        if c == "}" then return obj end
        if c ~= "," then fail("want , or }") end
      end
    elseif c == "[" then
      pos = pos + 1
      local arr = {}
      ws()
      if string.sub(s, pos, pos) == "]" then
        pos = pos + 1
        return arr
      end
      while true do
        arr[#arr + 1] = value()
        ws()
        c = string.sub(s, pos, pos)
        pos = pos + 1
        if c == "]" then return arr end
        if c ~= "," then fail("want , or ]") end
      end
    elseif c == '"' then
      return str()
    elseif string.sub(s, pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif string.sub(s, pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    elseif string.sub(s, pos, pos + 3) == "null" then
      pos = pos + 4
      return M.null
    end
    local num = string.match(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" then fail("unexpected input") end
    pos = pos + #num
    local v = tonumber(num)
    if v == 0 and string.sub(num, 1, 1) == "-" then
      local zero = 0.0
      v = -zero
    end
    return v
  end
  local ok, res = pcall(value)
  if not ok then
    return nil, res
  end
  return res
end

-- read_file returns the decoded content of a JSON file; it raises an error when it cannot.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  local v, err = M.decode(s)
  if err then
    error(path .. ": " .. err)
  end
  return v
end

return M
