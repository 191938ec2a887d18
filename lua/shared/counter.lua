-- Durable counters in the store. Each counter key must have a single writer (one actor), so that
-- reading, adding and writing back cannot lose an update.
local counter = {}

function counter.get(key)
  return mf.db.get(key) or 0
end

-- add adds n to the counter and returns the new value; it is saved when add returns.
function counter.add(key, n)
  local value = counter.get(key) + (n or 1)
  mf.db.put(key, value)
  return value
end

return counter
