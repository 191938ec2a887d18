-- A minimal test harness: test(name, fn) registers a test; run() runs them, prints each
-- failure and the summary line "N passed, N failed", and exits 1 if any failed.
local M = {}

local tests = {}

function M.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

-- check raises an error with message (and the values) when cond is false.
function M.check(cond, message, ...)
  if not cond then
    local parts = { message or "check failed" }
    for i = 1, select("#", ...) do
      parts[#parts + 1] = tostring((select(i, ...)))
    end
    error(table.concat(parts, " "), 2)
  end
end

function M.equal(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what or "value", tostring(got), tostring(want)), 2)
  end
end

function M.hex(s)
  return (string.gsub(s, ".", function(c) return string.format("%02x", string.byte(c)) end))
end

function M.unhex(h)
  return (string.gsub(h, "%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

function M.run(label)
  local passed, failed = 0, 0
  for _, t in ipairs(tests) do
    local ok, err = xpcall(t.fn, debug.traceback)
    if ok then
      passed = passed + 1
    else
      failed = failed + 1
      io.stderr:write("FAIL ", t.name, ": ", tostring(err), "\n")
    end
  end
  print(string.format("%s: %d passed, %d failed", label or _VERSION, passed, failed))
  os.exit(failed == 0 and 0 or 1)
end

return M
