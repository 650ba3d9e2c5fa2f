// qrpark phone page: sign in, plate, start, watch (with a proof of parking), stop, receipt,
// through the JSON API; a signed-in warden sees the space's enforcement view instead.
// No framework. The driver's city identity token lives only in sessionStorage.
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("msg").textContent);
  var store = window.sessionStorage;
  var TOKEN = "qrpark.token";
  function $(id) { return document.getElementById(id); }
  function show(id, on) { var el = $(id); if (el) el.hidden = !on; }
  function randomHex(bytes) {
    var a = new Uint8Array(bytes);
    window.crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function alertMsg(text) {
    var el = $("alert");
    el.textContent = text || "";
    el.hidden = !text;
  }
  function b64text(part) {
    var bin = atob(part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4));
    return new TextDecoder().decode(Uint8Array.from(bin, function (c) { return c.charCodeAt(0); }));
  }
  function jwtClaims(token) {
    try { return JSON.parse(b64text(token.split(".")[1])); } catch (e) { return null; }
  }

  // --- The sign-in callback page: store the token from the fragment and go back. ---
  if ($("callback")) {
    var params = new URLSearchParams(location.hash.slice(1));
    var back = store.getItem("qrpark.return");
    var token = params.get("id_token");
    var claims = token && jwtClaims(token);
    if (token && params.get("state") === store.getItem("qrpark.login_state") &&
        claims && claims.nonce === store.getItem("qrpark.login_nonce")) {
      store.setItem(TOKEN, token);
      store.removeItem("qrpark.login_state");
      store.removeItem("qrpark.login_nonce");
      history.replaceState(null, "", location.pathname);
      if (back && back.charAt(0) === "/" && back.charAt(1) !== "/") {
        location.replace(back);
        return;
      }
    } else {
      alertMsg(M.err_state);
    }
    if (back && back.charAt(0) === "/" && back.charAt(1) !== "/") $("callback-back").href = back;
    show("callback-wait", false);
    return;
  }

  var app = $("app");
  if (!app) return;
  var d = app.dataset;
  var lang = d.lang;
  // The server's clock, so times agree with what the server will charge.
  var skew = Number(d.now) - Date.now();
  function now() { return Date.now() + skew; }
  var sessionKey = "qrpark.session." + d.space;

  // The genuine-code check, made visible if this page is served from another address.
  if (d.expected && (location.origin + location.pathname).indexOf(d.expected) !== 0) {
    show("origin-mismatch", true);
  }

  var timeFmt;
  try {
    timeFmt = new Intl.DateTimeFormat(lang, { timeZone: d.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  } catch (e) { timeFmt = null; }
  function localTime(iso) {
    var t = new Date(iso);
    if (timeFmt) return timeFmt.format(t);
    var l = new Date(t.getTime() + Number(d.offset) * 60000);
    return ("0" + l.getUTCHours()).slice(-2) + ":" + ("0" + l.getUTCMinutes()).slice(-2);
  }
  function money(amount) { return d.symbol + amount; }
  function elapsed(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    return h + ":" + ("0" + m).slice(-2) + ":" + ("0" + sec).slice(-2);
  }

  // --- The API, with every failure in plain words. ---
  function explain(status, problem) {
    var code = problem && problem.code;
    if (status === 401 || code === "token_invalid") {
      store.removeItem(TOKEN);
      render();
      return M.err_expired;
    }
    if (code === "validation_failed") {
      var paths = (problem.errors || []).map(function (e) { return e.path; });
      if (paths.indexOf("$.plate") >= 0) return M.err_plate_invalid;
      if (paths.indexOf("$.stop_at") >= 0) return M.err_stop_at;
    }
    switch (code) {
      case "plate_required": return M.err_plate_required;
      case "too_many_active_sessions": return M.err_too_many;
      case "forbidden": return M.err_forbidden;
      case "space_occupied": return M.err_occupied;
      case "qr_revoked": return M.err_revoked;
      case "qr_invalid": return M.err_invalid;
      case "space_out_of_service": return M.err_out;
      case "no_tariff": return M.err_no_tariff;
      case "idempotency_key_in_flight": return M.err_busy;
      case "arrears_outstanding": return M.err_arrears;
      case "settlement_in_review": return M.err_in_review;
    }
    return M.err_generic;
  }
  function api(method, path, body, headers) {
    var h = { "Accept": "application/json" };
    var token = store.getItem(TOKEN);
    if (token) h["Authorization"] = "Bearer " + token;
    if (body) h["Content-Type"] = "application/json";
    for (var k in headers || {}) h[k] = headers[k];
    return fetch(path, { method: method, headers: h, body: body ? JSON.stringify(body) : undefined, credentials: "omit" })
      .then(function (r) {
        return r.text().then(function (text) {
          var json = null;
          try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
          if (!r.ok) {
            var err = new Error(explain(r.status, json));
            err.status = r.status;
            err.problem = json;
            throw err;
          }
          return json;
        });
      }, function () {
        var err = new Error(M.err_network);
        err.network = true;
        throw err;
      });
  }
  function busy(button, on) { if (button) button.disabled = on; }
  var dateFmt;
  try {
    dateFmt = new Intl.DateTimeFormat(lang, { timeZone: d.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  } catch (e) { dateFmt = null; }
  // YYYY-MM-DD HH:MM on the lot's clock, in either language (as the printable receipt).
  function localDateTime(iso) {
    if (!dateFmt) return iso.slice(0, 16).replace("T", " ");
    var p = {};
    dateFmt.formatToParts(new Date(iso)).forEach(function (x) { p[x.type] = x.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
  }

  // --- Which part of the parking card shows. ---
  var live = null;
  function render() {
    if (!$("signin")) return;
    var signedIn = !!store.getItem(TOKEN);
    var claims = signedIn && jwtClaims(store.getItem(TOKEN));
    if (claims && claims.exp && claims.exp * 1000 < Date.now()) {
      store.removeItem(TOKEN);
      signedIn = false;
      alertMsg(M.err_expired);
    }
    var hasSession = !!store.getItem(sessionKey);
    show("signin", !signedIn);
    show("ready", signedIn && !hasSession && $("receipt").hidden);
    show("live", signedIn && hasSession);
  }

  // --- Sign-in. ---
  function signIn() {
    var button = $("signin-btn");
    alertMsg("");
    if (d.demo) {
      busy(button, true);
      api("POST", "/v1/demo/token", { subject: "demo-driver-" + randomHex(6) })
        .then(function (answer) {
          store.setItem(TOKEN, answer.token);
          render();
          resume();
          var start = $("start-btn");
          if (start) start.focus();
        }, function (e) { alertMsg(e.message); })
        .then(function () { busy(button, false); });
    } else if (d.login) {
      var state = randomHex(16), nonce = randomHex(16);
      store.setItem("qrpark.login_state", state);
      store.setItem("qrpark.login_nonce", nonce);
      store.setItem("qrpark.return", location.pathname + location.search);
      var q = new URLSearchParams({
        response_type: "id_token", scope: "openid", client_id: d.client,
        redirect_uri: d.callback, state: state, nonce: nonce, ui_locales: lang
      });
      location.assign(d.login + (d.login.indexOf("?") < 0 ? "?" : "&") + q.toString());
    }
  }

  // After sign-in or a reload: pick up this driver's active session on this space.
  function resume() {
    if (!store.getItem(TOKEN)) return;
    loadArrears();
    var id = store.getItem(sessionKey);
    if (id) { watch(id); return; }
    api("GET", "/v1/me/sessions").then(function (list) {
      var active = (list && list.sessions || []).filter(function (s) {
        return s.space_id === d.space && s.status === "active";
      })[0];
      if (active) { store.setItem(sessionKey, active.id); render(); showLive(active); startTimers(active.id); }
    }, function (e) { if (e.status === 401) alertMsg(e.message); });
  }

  // --- The plate: normalised as the server does, remembered on this device. ---
  var PLATE = "qrpark.plate";
  var provinces = ($("start-form") && $("start-form").dataset.provinces) || "";
  function normalPlate(text) { return text.replace(/[\s\-·.]/g, "").toUpperCase(); }
  function plateOk(plate) {
    var rest = provinces.indexOf(plate.charAt(0)) >= 0 ? plate.slice(1) : plate;
    return /^[A-Z0-9]{2,10}$/.test(rest);
  }
  function pickProvince(ev) {
    var p = ev.target.closest && ev.target.closest(".prov");
    if (!p) return;
    var input = $("plate");
    var v = input.value.replace(/^\s+/, "");
    if (v && provinces.indexOf(v.charAt(0)) >= 0) v = v.slice(1);
    input.value = p.dataset.p + v;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  // The next instant the lot's clock shows `value` (HH:MM): today, or tomorrow if past.
  function nextLocal(value) {
    var offset = Number(d.offset) * 60000;
    var startMs = now();
    var local = new Date(startMs + offset);
    var endLocal = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate(),
      Number(value.slice(0, 2)), Number(value.slice(3, 5)));
    var tomorrow = false;
    if (endLocal <= local.getTime()) { endLocal += 86400000; tomorrow = true; }
    return { start: startMs, end: endLocal - offset, tomorrow: tomorrow };
  }

  // --- Start: one idempotency key per intent, reused if the answer was lost. ---
  var pendingKey = null, pendingBody = null;
  function start(ev) {
    if (ev) ev.preventDefault();
    var button = $("start-btn");
    if (button.disabled) return;
    alertMsg("");
    var plate = normalPlate($("plate").value);
    var body = { qr: d.qr };
    if (!plate && d.plateRequired) { alertMsg(M.err_plate_required); $("plate").focus(); return; }
    if (plate && !plateOk(plate)) { alertMsg(M.err_plate_invalid); $("plate").focus(); return; }
    if (plate) body.plate = plate;
    var stopAt = $("stop-at").value;
    if (/^\d\d:\d\d/.test(stopAt)) body.stop_at = new Date(nextLocal(stopAt).end).toISOString();
    var text = JSON.stringify(body);
    if (text !== pendingBody) { pendingKey = null; pendingBody = text; }
    busy(button, true);
    pendingKey = pendingKey || randomHex(16);
    api("POST", "/v1/sessions", body, { "Idempotency-Key": pendingKey })
      .then(function (session) {
        pendingKey = null;
        if (plate) window.localStorage.setItem(PLATE, plate);
        store.setItem(sessionKey, session.id);
        render();
        showLive(session);
        startTimers(session.id);
        watch(session.id);
        $("stop-btn").focus();
      }, function (e) {
        if (!e.network && e.problem && e.problem.code !== "idempotency_key_in_flight") pendingKey = null;
        alertMsg(e.message);
        if (e.problem && e.problem.code === "arrears_outstanding") {
          var owed = e.problem.arrears || [];
          showArrears(owed, sumByCurrency(owed));
          $("arrears-h").focus();
        }
      })
      .then(function () { busy(button, false); });
  }

  // --- The live view. ---
  var timers = [];
  function showLive(session) {
    live = session;
    show("live", true);
    show("ready", false);
    if (session.fee && session.fee.total) $("fee").textContent = money(session.fee.total);
    if (session.leave_by) {
      $("leave-by").textContent = localTime(session.leave_by);
      show("leave-by-row", true);
    }
    $("live-plate").textContent = session.plate || "";
    show("live-plate-row", !!session.plate);
    $("stops-at").textContent = session.stop_at ? localTime(session.stop_at) : "";
    show("stops-at-row", !!session.stop_at);
    tick();
  }

  // --- The proof of parking: a fresh signed token every 4 minutes (each valid 15). ---
  var proof = null;
  function fetchProof(id) {
    return api("GET", "/v1/sessions/" + encodeURIComponent(id) + "/proof").then(function (p) {
      proof = p;
      $("proof-img").src = "data:image/svg+xml;base64," + btoa(p.qr_svg);
      show("proof-img", true);
      $("proof-token").value = p.token;
      show("proof", true);
      proofState();
    }, function (e) {
      if (e.status === 409) watch(id);
      else proofState();
    });
  }
  function proofState() {
    if (!proof) return;
    var fresh = new Date(proof.expires_at).getTime() > now();
    $("proof-valid").textContent = fresh ? M.proof_valid.replace("{time}", localTime(proof.expires_at)) : M.proof_expired;
    show("proof-img", fresh);
  }
  function copyProof() {
    var area = $("proof-token");
    area.select();
    var done = function () { $("proof-copied").textContent = M.copied; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(area.value).then(done, function () {});
    else { try { if (document.execCommand("copy")) done(); } catch (e) { /* selected for a manual copy */ } }
  }
  function tick() {
    if (live) $("elapsed").textContent = elapsed(now() - new Date(live.started_at).getTime());
  }
  function watch(id) {
    return api("GET", "/v1/sessions/" + encodeURIComponent(id)).then(function (session) {
      if (session.status === "active") {
        showLive(session);
        if (!timers.length) startTimers(id);
      } else {
        stopTimers();
        showReceipt(session);
      }
    }, function (e) {
      if (e.status === 404) { store.removeItem(sessionKey); stopTimers(); render(); }
      else alertMsg(e.message);
    });
  }
  function startTimers(id) {
    stopTimers();
    timers.push(setInterval(tick, 1000));
    timers.push(setInterval(function () { watch(id); proofState(); }, 15000));
    timers.push(setInterval(function () { fetchProof(id); }, 240000));
    fetchProof(id);
  }
  function stopTimers() { timers.forEach(clearInterval); timers = []; }

  // --- Stop and the receipt. ---
  function stop() {
    var button = $("stop-btn");
    var id = store.getItem(sessionKey);
    if (!id || button.disabled) return;
    alertMsg("");
    busy(button, true);
    api("POST", "/v1/sessions/" + encodeURIComponent(id) + "/stop")
      .then(function (session) { stopTimers(); showReceipt(session); },
            function (e) { alertMsg(e.message); })
      .then(function () { busy(button, false); });
  }
  function showReceipt(session) {
    store.removeItem(sessionKey);
    live = null;
    proof = null;
    show("proof", false);
    $("receipt-plate").textContent = session.plate || "";
    show("receipt-plate-row", !!session.plate);
    $("receipt-ended-by").textContent = M["ended_" + session.ended_by] || "";
    show("live", false);
    show("ready", false);
    show("receipt", true);
    $("receipt-start").textContent = localTime(session.started_at);
    $("receipt-end").textContent = session.ended_at ? localTime(session.ended_at) : "";
    var fee = session.fee || {};
    $("receipt-total").textContent = money(fee.total || "");
    var body = $("receipt-lines").tBodies[0];
    body.textContent = "";
    (fee.lines || []).forEach(function (line) {
      var tr = body.insertRow();
      tr.insertCell().textContent = localTime(line.from) + "–" + localTime(line.to) + " (" + line.rule + ")";
      var c = tr.insertCell();
      c.className = "n";
      c.textContent = money(line.charged);
    });
    receiptId = session.id;
    showSettlement(session);
    $("receipt").setAttribute("tabindex", "-1");
    $("receipt").focus();
  }
  // The settlement in words, and the refunds; a payment on its way is followed until the
  // gateway answers (a refusal brings up the arrears).
  var receiptId = null;
  function showSettlement(session) {
    var s = session.settlement;
    $("receipt-settlement").textContent = s ? (M[s.status] || s.status) : "";
    $("receipt-ref").textContent = s ? s.reference : "";
    var refunds = session.refunds || [];
    var body = $("receipt-refunds").tBodies[0];
    body.textContent = "";
    refunds.forEach(function (r) {
      var tr = body.insertRow();
      tr.insertCell().textContent = localDateTime(r.refunded_at || r.created_at);
      tr.insertCell().textContent = r.reason;
      tr.insertCell().textContent = M["refund_" + r.status] || r.status;
      var c = tr.insertCell();
      c.className = "n";
      c.textContent = money(r.amount);
    });
    $("receipt-refunded").textContent = s ? M.refunded_total.replace("{amount}", money(s.refunded)) : "";
    show("receipt-refunds-box", refunds.length > 0);
    if (s && s.status === "pending") follow(session.id);
    if (s && s.status === "arrears") loadArrears();
  }

  // --- Arrears: fees the city's payment gateway refused, paid again from here. ---
  function amountOf(amount, currency) { return amount + " " + currency; }
  // Sums of decimal amounts per currency, in whole minor units (money is never a float).
  function sumByCurrency(items) {
    var sums = {}, places = {};
    items.forEach(function (it) {
      var parts = String(it.amount).split(".");
      sums[it.currency] = (sums[it.currency] || 0) + Number(parts[0] + (parts[1] || ""));
      places[it.currency] = parts[1] ? parts[1].length : 0;
    });
    return Object.keys(sums).sort().map(function (c) {
      var minor = String(sums[c]), n = places[c];
      while (minor.length <= n) minor = "0" + minor;
      return { currency: c, amount: n ? minor.slice(0, -n) + "." + minor.slice(-n) : minor };
    });
  }
  function showArrears(items, totals) {
    var list = $("arrears-list");
    if (!list) return;
    list.textContent = "";
    items.forEach(function (it) {
      var li = document.createElement("li");
      li.id = "arrears-" + it.session_id;
      li.dataset.state = "arrears";
      var p = document.createElement("p");
      p.id = "arrears-text-" + it.session_id;
      p.textContent = M.arrears_item.replace("{amount}", amountOf(it.amount, it.currency))
        .replace("{reference}", it.reference).replace("{since}", localDateTime(it.since));
      var button = document.createElement("button");
      button.type = "button";
      button.className = "pay";
      button.dataset.session = it.session_id;
      button.textContent = M.pay.replace("{amount}", amountOf(it.amount, it.currency));
      button.setAttribute("aria-describedby", p.id);
      var status = document.createElement("p");
      status.className = "pay-status";
      status.setAttribute("aria-live", "polite");
      status.setAttribute("tabindex", "-1");
      li.appendChild(p);
      li.appendChild(button);
      li.appendChild(status);
      list.appendChild(li);
    });
    $("arrears-total").textContent = totals.map(function (t) { return amountOf(t.amount, t.currency); }).join(", ");
    $("arrears-done").textContent = "";
    show("arrears", items.length > 0);
  }
  function loadArrears() {
    if (!store.getItem(TOKEN) || !$("arrears")) return;
    api("GET", "/v1/me/arrears").then(function (a) { showArrears(a.items, a.totals); }, function () {});
  }
  // One idempotency key per payment, reused only if its answer was lost.
  var payKeys = {};
  function pay(ev) {
    var button = ev.target.closest && ev.target.closest("button.pay");
    if (!button || button.disabled) return;
    var id = button.dataset.session;
    var status = button.parentNode.querySelector(".pay-status");
    alertMsg("");
    busy(button, true);
    payKeys[id] = payKeys[id] || randomHex(16);
    api("POST", "/v1/me/arrears/" + encodeURIComponent(id) + "/pay", null, { "Idempotency-Key": payKeys[id] })
      .then(function (answer) {
        delete payKeys[id];
        paid(id, answer.settlement.status);
      }, function (e) {
        if (!e.network && !(e.problem && e.problem.code === "idempotency_key_in_flight")) delete payKeys[id];
        if (e.problem && e.problem.code === "settlement_in_review") { paid(id, "review"); return; }
        status.textContent = e.message;
        busy(button, false);
      });
  }
  // An item's payment state: `pending` = sent, `settled` = paid, `review`, or `arrears` again.
  function paid(id, state) {
    var li = $("arrears-" + id);
    if (!li) return;
    li.dataset.state = state;
    var button = li.querySelector("button.pay");
    var status = li.querySelector(".pay-status");
    status.textContent = { settled: M.pay_settled, pending: M.pay_sent, review: M.err_in_review }[state] || M.pay_refused;
    var done = state !== "arrears";
    var hadFocus = document.activeElement === button;
    button.hidden = done;
    busy(button, false);
    if (hadFocus && done) status.focus();
    if (state === "pending") follow(id);
    var owed = Array.prototype.some.call($("arrears-list").children, function (item) {
      return item.dataset.state === "arrears";
    });
    $("arrears-done").textContent = owed ? "" : M.arrears_clear;
  }
  // Payments on their way, asked after every 3 s until the gateway has answered.
  var following = {}, followTimer = null;
  function follow(id) {
    following[id] = true;
    if (!followTimer) followTimer = setInterval(followTick, 3000);
  }
  function followTick() {
    var ids = Object.keys(following);
    if (!ids.length) { clearInterval(followTimer); followTimer = null; return; }
    ids.forEach(function (id) {
      api("GET", "/v1/sessions/" + encodeURIComponent(id)).then(function (session) {
        var state = session.settlement ? session.settlement.status : "settled";
        if (state === "pending") return;
        delete following[id];
        if ($("arrears-" + id)) paid(id, state);
        if (receiptId === id) showSettlement(session);
        else if (state === "arrears") loadArrears();
      }, function (e) { if (e.status === 404 || e.status === 401) delete following[id]; });
    });
  }

  // --- The calculator: "if I leave at 18:00 I pay ...". ---
  function calculate(ev) {
    ev.preventDefault();
    var value = $("leave").value;
    var out = $("calc-out");
    if (!/^\d\d:\d\d/.test(value)) return;
    var next = nextLocal(value);
    var startMs = next.start, endMs = next.end, tomorrow = next.tomorrow;
    out.textContent = "…";
    api("POST", "/v1/lots/" + d.lot + "/quote", {
      start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString()
    }).then(function (fee) {
      var when = value.slice(0, 5) + (tomorrow ? " (" + M.tomorrow + ")" : "");
      var text = M.calc_result.replace("{time}", when).replace("{fee}", money(fee.total));
      if (d.maxStay && endMs - startMs > Number(d.maxStay) * 60000) text += " " + M.over_max;
      out.textContent = text;
    }, function (e) { out.textContent = e.message; });
  }

  if ($("signin-btn")) $("signin-btn").addEventListener("click", signIn);
  if ($("start-form")) {
    $("start-form").addEventListener("submit", start);
    $("provinces").addEventListener("click", pickProvince);
    $("plate").value = window.localStorage.getItem(PLATE) || "";
    $("proof-copy").addEventListener("click", copyProof);
  }
  if ($("stop-btn")) $("stop-btn").addEventListener("click", stop);
  if ($("arrears-list")) $("arrears-list").addEventListener("click", pay);
  if ($("signout-btn")) $("signout-btn").addEventListener("click", function () {
    store.removeItem(TOKEN);
    alertMsg("");
    show("arrears", false);
    render();
    $("signin-btn") && $("signin-btn").focus();
  });
  if ($("calc-form")) {
    $("calc-form").addEventListener("submit", calculate);
    show("calc", true);
  }
  window.addEventListener("offline", function () { alertMsg(M.err_network); });
  window.addEventListener("online", function () { alertMsg(""); });

  // --- A signed-in warden (token kept by the warden's page) sees the enforcement view. ---
  function wardenToken() {
    var token = window.localStorage.getItem("qrpark.warden.token");
    var claims = token && jwtClaims(token);
    var ok = claims && (claims.roles || []).indexOf("warden") >= 0 && !(claims.exp && claims.exp * 1000 < Date.now());
    return ok ? token : null;
  }
  function duration(ms) {
    var m = Math.max(0, Math.round(ms / 60000));
    return (m >= 60 ? Math.floor(m / 60) + " " + M.hours + " " : "") + (m % 60) + " " + M.minutes;
  }
  function enforce(token) {
    show("enforce", true);
    show("park", false);
    show("calc", false);
    fetch("/v1/enforcement/check?qr=" + encodeURIComponent(d.qr), {
      headers: { "Accept": "application/json", "Authorization": "Bearer " + token }, credentials: "omit"
    }).then(function (r) {
      if (r.ok) return r.json();
      throw new Error(r.status === 401 ? M.err_expired : r.status === 403 ? M.err_forbidden : M.err_generic);
    }, function () { throw new Error(M.err_network); }).then(function (answer) {
      var r = answer.results[0];
      var paid = r.status === "paid";
      var status = $("enforce-status");
      status.textContent = paid ? M.paid : M.unpaid;
      status.className = "status " + (paid ? "free" : "busy");
      $("enforce-plate").textContent = paid ? (r.plate || M.no_plate) : "–";
      $("enforce-since").textContent = r.started_at ? localTime(r.started_at) : "–";
      $("enforce-left").textContent = !paid ? "–" : r.leave_by
        ? M.left.replace("{time}", duration(new Date(r.leave_by) - new Date(answer.checked_at))).replace("{until}", localTime(r.leave_by))
        : M.no_limit;
      $("enforce-last").textContent = r.last_ended_at ? M.last_ended.replace("{time}", localTime(r.last_ended_at)) : "";
    }, function (e) { alertMsg(e.message); });
  }
  var warden = wardenToken();
  if (warden && $("enforce")) {
    enforce(warden);
    $("enforce-driver").addEventListener("click", function () {
      show("enforce", false);
      show("park", true);
      show("calc", !!$("calc-form"));
    });
  }
  render();
  resume();
})();
