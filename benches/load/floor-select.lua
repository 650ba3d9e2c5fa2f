-- The floor's one-row select by unique key, over the 10,000 seeded rows.
local n = 0
function request()
  n = n + 1
  return wrk.format("GET", "/select/k" .. (n * 7919 % 10000))
end
