// The cashmatch workbench: keyboard shortcuts and the live balance check of the allocation
// table. The pages work without this file; the server checks everything again.
"use strict";

(function () {
  // ---- exact decimals: amounts as BigInt counts of 10^-SCALE, never floating point ----
  var SCALE = 10;
  var ONE = BigInt("1" + "0".repeat(SCALE));

  // The amount forms the server accepts: optional sign, digits (thousands commas in groups of
  // three), optional decimals. Returns null for anything else, 0n for blank.
  function parse(text) {
    var s = (text || "").trim();
    if (s === "") return 0n;
    if (!/^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$/.test(s)) return null;
    var neg = s[0] === "-";
    s = s.replace(/^[+-]/, "").replace(/,/g, "");
    var parts = s.split(".");
    var frac = (parts[1] || "");
    if (frac.length > SCALE) return null;
    var v = BigInt(parts[0] + frac.padEnd(SCALE, "0"));
    return neg ? -v : v;
  }

  function decimals(text) {
    var m = /\.(\d+)\s*$/.exec(text || "");
    return m ? m[1].length : 0;
  }

  // Formats with thousands separators and `places` decimals (trailing digits beyond are kept).
  function format(v, places) {
    var neg = v < 0n;
    if (neg) v = -v;
    var s = v.toString().padStart(SCALE + 1, "0");
    var int = s.slice(0, s.length - SCALE);
    var frac = s.slice(s.length - SCALE).replace(/0+$/, "");
    if (frac.length < places) frac = frac.padEnd(places, "0");
    int = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-" : "") + int + (frac ? "." + frac : "");
  }

  function plain(v, places) {
    return format(v, places).replace(/,/g, "");
  }

  // ---- the allocation table ----
  function setupAllocation(table) {
    var form = table.closest("form");
    var payment = parse(table.getAttribute("data-payment"));
    var places = decimals(table.getAttribute("data-payment"));
    var unapplied = form.querySelector("#unapplied");
    var appliedCell = form.querySelector("[data-applied]");
    var balanceCell = form.querySelector("[data-balance]");
    var submitButton = form.querySelector("[data-allocate]");
    var auto = unapplied && unapplied.hasAttribute("data-auto");
    if (unapplied) {
      unapplied.addEventListener("input", function () { auto = false; });
    }

    function check() {
      var applied = 0n;
      var problems = 0;
      table.querySelectorAll("tr[data-row]").forEach(function (row) {
        var inputs = {
          amt: row.querySelector("input[name^='amt.']"),
          disc: row.querySelector("input[name^='disc.']"),
          ded: row.querySelector("input[name^='ded.']"),
          code: row.querySelector("input[name^='code.']"),
        };
        var msg = [];
        var vals = {};
        ["amt", "disc", "ded"].forEach(function (k) {
          var v = parse(inputs[k].value);
          inputs[k].classList.toggle("invalid", v === null);
          if (v === null) msg.push("not an amount");
          vals[k] = v === null ? 0n : v;
        });
        if (vals.disc < 0n || vals.ded < 0n) msg.push("discount and deduction cannot be negative");
        if (vals.ded !== 0n && inputs.code.value.trim() === "") msg.push("a deduction needs a reason code");
        inputs.code.classList.toggle("invalid", vals.ded !== 0n && inputs.code.value.trim() === "");
        applied += vals.amt;
        var relieved = vals.amt + vals.disc + vals.ded;
        var openText = row.getAttribute("data-open");
        if (openText !== null && relieved !== 0n) {
          var open = parse(openText);
          var credit = open < 0n;
          if (!credit && relieved > open) {
            msg.push("relieves " + format(relieved, places) + ", " + format(relieved - open, places) + " over the open " + format(open, places));
          } else if (credit && relieved < open) {
            msg.push("nets more than the credit open");
          }
        }
        var idInput = row.querySelector("input[name^='inv.'][type=text]");
        if (idInput && relieved !== 0n && idInput.value.trim() === "") msg.push("choose an invoice");
        row.classList.toggle("over", msg.length > 0);
        var cell = row.querySelector("[data-check]");
        if (cell) cell.textContent = msg.join("; ");
        problems += msg.length;
      });
      if (auto && unapplied) unapplied.value = plain(payment - applied, places);
      var stated = unapplied ? parse(unapplied.value) : 0n;
      if (unapplied) unapplied.classList.toggle("invalid", stated === null);
      appliedCell.textContent = format(applied, places);
      balanceCell.textContent = "";
      var span = document.createElement("span");
      if (stated === null) {
        span.className = "bad";
        span.textContent = "Unapplied is not an amount.";
        problems++;
      } else if (applied > payment) {
        span.className = "bad";
        span.textContent = "Applies " + format(applied - payment, places) + " more than the payment.";
        problems++;
      } else if (applied + stated !== payment) {
        span.className = "bad";
        span.textContent = format(applied, places) + " applied + " + format(stated, places) + " unapplied = " +
          format(applied + stated, places) + ", not the payment's " + format(payment, places) + ".";
        problems++;
      } else {
        span.className = "good";
        span.textContent = "✓ " + format(applied, places) + " applied + " + format(stated, places) + " unapplied = the payment.";
      }
      balanceCell.appendChild(span);
      return problems;
    }

    table.addEventListener("input", check);
    if (unapplied) unapplied.addEventListener("input", check);
    check();
    // Refuse here what the server would refuse anyway, and say why before the round trip.
    form.addEventListener("submit", function (e) {
      var by = e.submitter;
      if (by && by === submitButton && check() > 0) {
        e.preventDefault();
        balanceCell.scrollIntoView({ block: "center" });
        balanceCell.classList.add("flash");
      }
    });
  }

  // ---- keyboard ----
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function setupQueueRows() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("table[data-queue] tbody tr[data-href]"));
    var sel = rows.length ? 0 : -1;
    function show() {
      rows.forEach(function (r, i) { r.classList.toggle("selected", i === sel); });
      if (sel >= 0) rows[sel].scrollIntoView({ block: "nearest" });
    }
    rows.forEach(function (r, i) {
      r.addEventListener("click", function (e) {
        if (e.target.closest("a, button, input")) return;
        sel = i;
        window.location.href = r.getAttribute("data-href");
      });
    });
    show();
    return {
      move: function (d) { if (rows.length) { sel = Math.max(0, Math.min(rows.length - 1, sel + d)); show(); } },
      open: function () { if (sel >= 0) window.location.href = rows[sel].getAttribute("data-href"); },
      any: rows.length > 0,
    };
  }

  function click(selector) {
    var el = document.querySelector(selector);
    if (el) { el.click(); return true; }
    return false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-alloc]").forEach(setupAllocation);
    var queue = setupQueueRows();
    var help = document.getElementById("help");
    var helpButton = document.querySelector("[data-help]");
    if (helpButton) {
      helpButton.hidden = false;
      helpButton.addEventListener("click", function () { help.hidden = !help.hidden; });
    }
    if (help) help.addEventListener("click", function (e) { if (e.target === help) help.hidden = true; });

    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") {
        if (help) help.hidden = true;
        if (typing(document.activeElement)) document.activeElement.blur();
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
      var handled = true;
      switch (e.key) {
        case "j": queue.move(1); break;
        case "k": queue.move(-1); break;
        case "o":
        case "Enter": if (queue.any) queue.open(); else handled = false; break;
        case "n":
          if (!click("[data-next]")) {
            if (queue.any) queue.open(); else handled = false;
          }
          break;
        case "a": handled = click("[data-accept-top]"); break;
        case "e": {
          var first = document.querySelector("table[data-alloc] input[name^='amt.']");
          if (first) { first.focus(); first.select(); } else handled = false;
          break;
        }
        case "u": {
          var note = document.getElementById("note");
          if (note && note.value.trim() === "") { note.focus(); note.placeholder = "Why leave it unapplied? Then press u again after Esc."; }
          else handled = click("[data-leave]");
          break;
        }
        case "q": window.location.href = "/queue"; break;
        case "d": window.location.href = "/dashboard"; break;
        case "/": {
          var f = document.getElementById("filter-customer");
          if (f) f.focus(); else handled = false;
          break;
        }
        case "?": if (help) help.hidden = !help.hidden; break;
        default: handled = false;
      }
      if (handled) e.preventDefault();
    });
  });
})();
