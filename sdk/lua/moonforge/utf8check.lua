-- UTF-8 validation with the rules of Go's utf8.Valid, which protobuf-go applies to string fields:
-- no overlong forms, no surrogates (U+D800 to U+DFFF), nothing above U+10FFFF.
local byte, find = string.byte, string.find

local M = {}

-- valid reports whether s[i..j] is valid UTF-8 (the whole string by default).
function M.valid(s, i, j)
  i = i or 1
  j = j or #s
  while i <= j do
    -- Skip a run of ASCII at once.
    local k = find(s, "[\128-\255]", i)
    if not k or k > j then
      return true
    end
    i = k
    local c = byte(s, i)
    local n, lo, hi = 0, 128, 191
    if c >= 194 and c <= 223 then
      n = 1
    elseif c >= 224 and c <= 239 then
      n = 2
      if c == 224 then
        lo = 160
      elseif c == 237 then
        hi = 159
      end
    elseif c >= 240 and c <= 244 then
      n = 3
      if c == 240 then
        lo = 144
      elseif c == 244 then
        hi = 143
      end
    else
      return false
    end
    if i + n > j then
      return false
    end
    local c2 = byte(s, i + 1)
    if c2 < lo or c2 > hi then
      return false
    end
    for k2 = i + 2, i + n do
      local cc = byte(s, k2)
      if cc < 128 or cc > 191 then
        return false
      end
    end
    i = i + n + 1
  end
  return true
end

return M
