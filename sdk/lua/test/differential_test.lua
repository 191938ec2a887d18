-- Differential test input from sdk_test.go: random mutations of the conformance vectors, each
-- with protobuf-go's verdict. The pure-Lua codec must agree: refuse what protobuf-go refuses
-- (without raising), and re-encode what it accepts to protobuf-go's bytes.
-- Usage: lua differential_test.lua <cases.json>
local dir = string.match(arg[0], "^(.*[/\\])") or "./"
package.path = dir .. "?.lua;" .. dir .. "../?.lua;" .. package.path

local T = require("testing")
local json = require("json")
local mf = require("moonforge")
local codec = require("moonforge.lua_codec").new()

local schema = mf.Schema.new(require("conformance_schema"))
local cases = json.read_file(assert(arg[1], "usage: lua differential_test.lua <cases.json>"))

T.test("every case agrees with protobuf-go", function()
  local failures = {}
  for i, c in ipairs(cases) do
    local md = assert(schema:message(c.type), c.type)
    local ok, t, err = pcall(codec.decode, md, T.unhex(c.hex))
    local problem
    if not ok then
      problem = "decode raised: " .. tostring(t)
    elseif c.valid and not t then
      problem = "refused what protobuf-go accepts: " .. tostring(err)
    elseif not c.valid and t then
      problem = "accepted what protobuf-go refuses"
    elseif c.valid then
      local b, eerr = codec.encode(md, t)
      if not b then
        problem = "re-encode failed: " .. tostring(eerr)
      elseif T.hex(b) ~= c.want then
        problem = "re-encoded as " .. T.hex(b) .. ", protobuf-go gives " .. c.want
      end
    end
    if problem and #failures < 10 then
      failures[#failures + 1] = string.format("case %d (%s %s): %s", i, c.type, c.hex, problem)
    end
  end
  T.check(#failures == 0, table.concat(failures, "\n"))
  T.check(#cases >= 1000, "too few cases", #cases)
end)

T.run("differential")
