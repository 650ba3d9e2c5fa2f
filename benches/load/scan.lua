-- GET /v1/scan/{token}, cycling through the seeded spaces' QR tokens.
dofile(os.getenv("QRPARK_LOAD_DATA"))
local n = 0
function request()
  n = n + 1
  return wrk.format("GET", "/v1/scan/" .. spaces[(n % #spaces) + 1].qr)
end
