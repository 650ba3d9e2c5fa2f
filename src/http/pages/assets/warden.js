// qrpark warden page: sign in with the city identity, walk a lot's spaces live, find a plate,
// record a violation, and check a driver's proof of parking OFFLINE with WebCrypto Ed25519
// against the JWKS kept in localStorage. No framework, nothing from other hosts.
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("msg").textContent);
  var app = document.getElementById("warden");
  if (!app) return;
  var d = app.dataset;
  var local = window.localStorage;
  // The warden's token is kept on the device (not per tab like a driver's), so that codes
  // opened from the camera app in a new tab show the warden's view; sign-out removes it.
  var TOKEN = "qrpark.warden.token";
  var JWKS = "qrpark.jwks";
  var LOT = "qrpark.warden.lot";
  var SPACES = "qrpark.warden.spaces";
  var PROOF_TYP = "qrpark-proof+jwt";
  var skew = Number(d.now) - Date.now();
  function now() { return Date.now() + skew; }
  function $(id) { return document.getElementById(id); }
  function show(id, on) { var el = $(id); if (el) el.hidden = !on; }
  function alertMsg(text) { var el = $("alert"); el.textContent = text || ""; el.hidden = !text; }
  function randomHex(bytes) {
    var a = new Uint8Array(bytes);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function bytes(part) {
    var bin = atob(part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4));
    return Uint8Array.from(bin, function (c) { return c.charCodeAt(0); });
  }
  function json64(part) { return JSON.parse(new TextDecoder().decode(bytes(part))); }
  function claimsOf(token) { try { return json64(token.split(".")[1]); } catch (e) { return null; } }
  function readJson(key) { try { return JSON.parse(local.getItem(key) || "null"); } catch (e) { return null; } }
  function fill(text, values) {
    return Object.keys(values).reduce(function (t, k) { return t.replace("{" + k + "}", values[k]); }, text);
  }
  var clock = new Intl.DateTimeFormat(d.lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function time(when) { return clock.format(new Date(when)); }
  function duration(ms) {
    var m = Math.max(0, Math.round(ms / 60000));
    return (m >= 60 ? Math.floor(m / 60) + " " + M.hours + " " : "") + (m % 60) + " " + M.minutes;
  }
  function normalPlate(text) { return text.replace(/[\s\-·.]/g, "").toUpperCase(); }

  // --- Who is signed in. ---
  function token() {
    var t = local.getItem(TOKEN);
    var c = t && claimsOf(t);
    if (t && (!c || (c.exp && c.exp * 1000 < Date.now()))) { local.removeItem(TOKEN); alertMsg(M.err_expired); return null; }
    return t;
  }
  function isWarden(t) { var c = t && claimsOf(t); return !!(c && (c.roles || []).indexOf("warden") >= 0); }
  // A city sign-in comes back through /q/callback, which keeps the token for the tab.
  (function adopt() {
    var s = window.sessionStorage, t = s.getItem("qrpark.token");
    var fromHere = s.getItem("qrpark.return") === "/warden";
    if (fromHere) s.removeItem("qrpark.return");
    if (!t || local.getItem(TOKEN)) return;
    if (isWarden(t)) { local.setItem(TOKEN, t); s.removeItem("qrpark.token"); }
    else if (fromHere) alertMsg(M.err_not_warden);
  })();

  // --- The API. ---
  function explain(status, problem) {
    var code = problem && problem.code;
    if (status === 401) { local.removeItem(TOKEN); stopTimer(); render(); return M.err_expired; }
    if (status === 403) return M.err_not_warden;
    if (code === "space_paid") return M.err_space_paid;
    if (code === "validation_failed") return M.err_plate;
    return M.err_generic;
  }
  function api(method, path, body) {
    var h = { "Accept": "application/json" };
    var t = token();
    if (t) h["Authorization"] = "Bearer " + t;
    if (body) h["Content-Type"] = "application/json";
    return fetch(path, { method: method, headers: h, body: body ? JSON.stringify(body) : undefined, credentials: "omit" })
      .then(function (r) {
        return r.text().then(function (text) {
          var j = null;
          try { j = text ? JSON.parse(text) : null; } catch (e) { j = null; }
          if (!r.ok) { var err = new Error(explain(r.status, j)); err.status = r.status; throw err; }
          return j;
        });
      }, function () { var err = new Error(M.err_network); err.network = true; throw err; });
  }

  function render() {
    var t = token();
    var signed = !!t && isWarden(t);
    show("w-signin", !signed);
    show("w-who", signed);
    ["w-lot", "w-search", "w-violation"].forEach(function (id) { show(id, signed); });
    if (signed) $("w-subject").textContent = claimsOf(t).sub || "";
    if (t && !signed) alertMsg(M.err_not_warden);
  }

  // --- Sign-in: the demo provider, or the city's (the same flow as the phone page). ---
  function signIn() {
    var button = $("w-signin-btn");
    alertMsg("");
    if (d.demo) {
      button.disabled = true;
      api("POST", "/v1/demo/token", { subject: "demo-warden-" + randomHex(6), roles: ["warden"] })
        .then(function (answer) { local.setItem(TOKEN, answer.token); render(); loadLots(); },
              function (e) { alertMsg(e.message); })
        .then(function () { button.disabled = false; });
    } else if (d.login) {
      var s = window.sessionStorage, state = randomHex(16), nonce = randomHex(16);
      s.setItem("qrpark.login_state", state);
      s.setItem("qrpark.login_nonce", nonce);
      s.setItem("qrpark.return", "/warden");
      var q = new URLSearchParams({
        response_type: "id_token", scope: "openid", client_id: d.client,
        redirect_uri: d.callback, state: state, nonce: nonce, ui_locales: d.lang
      });
      location.assign(d.login + (d.login.indexOf("?") < 0 ? "?" : "&") + q.toString());
    }
  }
  function signOut() { local.removeItem(TOKEN); stopTimer(); alertMsg(""); render(); }

  // --- The lot's spaces, refreshed every 15 s; the last answer stays when offline. ---
  var timer = null, spaces = [];
  function stopTimer() { if (timer) clearInterval(timer); timer = null; }
  function loadLots() {
    api("GET", "/v1/enforcement/lots").then(function (answer) {
      var select = $("lot-select");
      select.textContent = "";
      var none = document.createElement("option");
      none.value = "";
      none.textContent = M.pick_lot;
      select.appendChild(none);
      answer.lots.forEach(function (lot) {
        var o = document.createElement("option");
        o.value = lot.id;
        o.textContent = lot.name + (lot.address ? " · " + lot.address : "");
        select.appendChild(o);
      });
      var saved = local.getItem(LOT);
      if (saved && answer.lots.some(function (l) { return l.id === saved; })) { select.value = saved; pickLot(); }
    }, function (e) { alertMsg(e.message); });
  }
  function pickLot() {
    var id = $("lot-select").value;
    stopTimer();
    if (!id) return;
    local.setItem(LOT, id);
    refresh();
    timer = setInterval(refresh, 15000);
  }
  function refresh() {
    var id = $("lot-select").value;
    if (!id) return;
    api("GET", "/v1/enforcement/lots/" + encodeURIComponent(id) + "/spaces").then(function (answer) {
      spaces = answer.results;
      remember(spaces);
      drawSpaces(answer.checked_at);
      $("spaces-updated").textContent = fill(M.updated, { time: time(answer.checked_at) });
      alertMsg("");
    }, function (e) {
      if (e.network) $("spaces-updated").textContent = fill(M.stale, { time: time(lastUpdate || now()) });
      else alertMsg(e.message);
    });
  }
  var lastUpdate = null;
  function statusText(r, checkedAt) {
    if (r.status === "paid") {
      var left = r.leave_by
        ? fill(M.left, { time: duration(new Date(r.leave_by) - new Date(checkedAt)), until: time(r.leave_by) })
        : M.no_limit;
      return [M.paid, r.plate || M.no_plate, left];
    }
    return [M.unpaid, r.last_ended_at ? fill(M.last_ended, { time: time(r.last_ended_at) }) : M.never];
  }
  function drawSpaces(checkedAt) {
    lastUpdate = checkedAt;
    var body = $("spaces").tBodies[0];
    body.textContent = "";
    var pick = $("v-space"), chosen = pick.value;
    pick.textContent = "";
    spaces.forEach(function (r) {
      var tr = body.insertRow();
      tr.dataset.code = r.space_code;
      tr.className = r.status;
      var code = tr.insertCell();
      code.className = "code-cell";
      code.textContent = r.space_code;
      var cell = tr.insertCell();
      statusText(r, checkedAt).forEach(function (line, i) {
        var el = document.createElement(i === 0 ? "strong" : "div");
        el.textContent = line;
        if (i === 0) el.className = "status " + (r.status === "paid" ? "free" : "busy");
        cell.appendChild(el);
      });
      var act = tr.insertCell();
      if (r.status !== "paid") {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "ticket";
        b.textContent = M.ticket;
        b.dataset.space = r.space_id;
        act.appendChild(b);
      }
      var o = document.createElement("option");
      o.value = r.space_id;
      o.textContent = r.space_code;
      pick.appendChild(o);
    });
    if (chosen) pick.value = chosen;
  }
  // Space ids to codes, so an offline proof names its space as the street does.
  function remember(results) {
    var known = readJson(SPACES) || {};
    results.forEach(function (r) { known[r.space_id] = r.space_code + " · " + r.lot_name; });
    local.setItem(SPACES, JSON.stringify(known));
  }
  function ticket(ev) {
    var b = ev.target.closest && ev.target.closest("button.ticket");
    if (!b) return;
    $("v-space").value = b.dataset.space;
    $("v-out").textContent = "";
    $("v-plate").focus();
  }

  // --- Find a plate. ---
  function search(ev) {
    ev.preventDefault();
    var plate = normalPlate($("search-plate").value);
    var out = $("search-out");
    out.textContent = "…";
    api("GET", "/v1/enforcement/check?plate=" + encodeURIComponent(plate)).then(function (answer) {
      remember(answer.results);
      out.textContent = answer.results.length ? answer.results.map(function (r) {
        var left = r.leave_by
          ? fill(M.left, { time: duration(new Date(r.leave_by) - new Date(answer.checked_at)), until: time(r.leave_by) })
          : M.no_limit;
        return fill(M.found, { plate: plate, space: r.space_code, lot: r.lot_name, left: left });
      }).join(" ") : M.found_none;
    }, function (e) { out.textContent = e.message; });
  }

  // --- Record a violation. ---
  function record(ev) {
    ev.preventDefault();
    var out = $("v-out");
    var body = { space_id: $("v-space").value, plate: normalPlate($("v-plate").value) };
    var note = $("v-note").value.trim();
    if (note) body.note = note;
    var button = ev.target.querySelector("button[type=submit]");
    button.disabled = true;
    out.textContent = "…";
    api("POST", "/v1/enforcement/violations", body).then(function (v) {
      out.textContent = fill(M.recorded, { plate: v.plate, space: v.space_code || v.space_id, time: time(v.observed_at) });
      $("v-plate").value = "";
      $("v-note").value = "";
      refresh();
    }, function (e) { out.textContent = e.message; }).then(function () { button.disabled = false; });
  }

  // --- Proofs of parking, verified on this device. ---
  function keysState() {
    var jwks = readJson(JWKS);
    $("keys-state").textContent = jwks && jwks.keys && jwks.keys.length
      ? fill(M.keys_saved, { time: new Date(jwks.at).toLocaleString(d.lang) })
      : M.keys_none;
  }
  function saveKeys() {
    fetch("/.well-known/jwks.json", { credentials: "omit" }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (set) {
      if (set && Array.isArray(set.keys)) local.setItem(JWKS, JSON.stringify({ at: Date.now(), keys: set.keys }));
      keysState();
    }, keysState);
  }
  var canVerify = !!(window.isSecureContext && window.crypto && window.crypto.subtle);

  function fact(name, value) {
    var div = document.createElement("div");
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    div.appendChild(dt);
    div.appendChild(dd);
    $("verify-facts").appendChild(div);
  }
  function uuidOf(part) {
    var hex = Array.prototype.map.call(bytes(part), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }
  function verdict(ok, text, claims, kid) {
    show("verify-out", true);
    var v = $("verify-verdict");
    v.textContent = text;
    v.className = "verdict " + (ok ? "good" : "bad");
    $("verify-facts").textContent = "";
    if (!claims) return;
    var space = "";
    try { space = uuidOf(String(claims.s)); } catch (e) { space = String(claims.s); }
    var known = readJson(SPACES) || {};
    fact(M.f_space, known[space] || space);
    fact(M.f_plate, claims.p || M.no_plate);
    fact(M.f_until, claims.exp ? time(claims.exp * 1000) : "–");
    fact(M.f_session, String(claims.sid));
    if (kid) fact(M.f_key, kid);
  }
  // Resolves to [valid, message, claims, kid]. Needs no network: the keys come from storage.
  function verifyProof(text) {
    var token = text.trim().replace(/\s+/g, "");
    var parts = token.split(".");
    var header, claims;
    try { header = json64(parts[0]); claims = json64(parts[1]); } catch (e) { header = null; }
    if (parts.length !== 3 || !header || header.typ !== PROOF_TYP || header.alg !== "EdDSA") {
      return Promise.resolve([false, M.invalid_format]);
    }
    if (!canVerify) return Promise.resolve([false, M.needs_https]);
    var jwks = readJson(JWKS);
    if (!jwks || !jwks.keys) return Promise.resolve([false, M.keys_none]);
    var jwk = jwks.keys.filter(function (k) { return k.kid === header.kid && k.kty === "OKP" && k.crv === "Ed25519" && (!k.purpose || k.purpose === "proof"); })[0];
    if (!jwk) return Promise.resolve([false, M.invalid_kid, claims, header.kid]);
    var subtle = window.crypto.subtle;
    return subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"])
      .then(function (key) {
        return subtle.verify({ name: "Ed25519" }, key, bytes(parts[2]), new TextEncoder().encode(parts[0] + "." + parts[1]));
      }, function () { throw new Error(M.no_ed25519); })
      .then(function (good) {
        // The device's clock, corrected by the server's when the page was loaded.
        var at = now();
        if (!good) return [false, M.invalid_signature, null, header.kid];
        if (typeof claims.exp !== "number" || claims.exp * 1000 <= at) {
          return [false, fill(M.expired, { time: time((claims.exp || 0) * 1000) }), claims, header.kid];
        }
        if (typeof claims.iat === "number" && claims.iat * 1000 > at + 300000) return [false, M.future, claims, header.kid];
        return [true, M.valid, claims, header.kid];
      })
      .catch(function (e) { return [false, e.message === M.no_ed25519 ? M.no_ed25519 : M.invalid_signature]; });
  }
  function check(ev) {
    if (ev) ev.preventDefault();
    verifyProof($("proof-in").value).then(function (r) { verdict(r[0], r[1], r[2], r[3]); });
  }

  // --- The camera, where the browser can read QR codes itself. ---
  var stream = null;
  function camera() {
    var button = $("camera-btn"), video = $("camera");
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; video.hidden = true; button.textContent = button.dataset.label; return; }
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
      stream = s;
      video.srcObject = s;
      video.hidden = false;
      button.textContent = M.camera_stop;
      video.play();
      (function look() {
        if (!stream) return;
        detector.detect(video).then(function (codes) {
          if (codes.length) { $("proof-in").value = codes[0].rawValue; camera(); check(); }
          else setTimeout(look, 250);
        }, function () { setTimeout(look, 500); });
      })();
    }, function (e) { alertMsg(e.message); });
  }

  if (!canVerify) show("needs-https", true);
  if ("BarcodeDetector" in window && navigator.mediaDevices && window.isSecureContext) {
    $("camera-btn").dataset.label = $("camera-btn").textContent;
    $("camera-btn").addEventListener("click", camera);
    show("camera-btn", true);
  }
  if ($("w-signin-btn")) $("w-signin-btn").addEventListener("click", signIn);
  $("w-signout").addEventListener("click", signOut);
  $("lot-select").addEventListener("change", pickLot);
  $("spaces").addEventListener("click", ticket);
  $("search-form").addEventListener("submit", search);
  $("violation-form").addEventListener("submit", record);
  $("verify-form").addEventListener("submit", check);
  window.addEventListener("offline", function () { alertMsg(M.err_network); });
  window.addEventListener("online", function () { alertMsg(""); saveKeys(); refresh(); });
  keysState();
  saveKeys();
  render();
  if (isWarden(token())) loadLots();
})();
