// rampart console: live updates without a reload, and a confirmation before a kill.
// The pages work without this script; it only saves the reader a refresh.
"use strict";

(function () {
  // A button with data-confirm asks before its form is sent.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Only pages that name a stream (the gates, a gate) follow one.
  var source = document.querySelector("[data-events]");
  if (!source || !window.EventSource) {
    return;
  }
  var url = source.getAttribute("data-events");
  // A gate's page shows every judged window; the gates page only what changed.
  var every = source.hasAttribute("data-every-decision");

  // Someone typing into an action form keeps what they typed: the page is not swapped then.
  function typing() {
    var active = document.activeElement;
    if (active && active.form && active.form.classList.contains("act")) {
      return true;
    }
    var fields = document.querySelectorAll("form.act textarea, form.act input[type=text], form.act input[type=number]");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value) {
        return true;
      }
    }
    return false;
  }

  var pending = null;
  function say(text) {
    var live = document.getElementById("live");
    if (live) {
      live.textContent = text;
    }
  }

  // Fetches this page again and swaps its <main>, at most every half second.
  function refresh(what) {
    if (pending) {
      return;
    }
    pending = window.setTimeout(function () {
      pending = null;
      if (typing()) {
        say(what + " — not refreshed while you fill in the form; reload to see it.");
        return;
      }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.text(); })
        .then(function (text) {
          if (typing()) {
            say(what + " — not refreshed while you fill in the form; reload to see it.");
            return;
          }
          var next = new DOMParser().parseFromString(text, "text/html").getElementById("main");
          var main = document.getElementById("main");
          if (next && main) {
            main.innerHTML = next.innerHTML;
            say(what + " at " + new Date().toLocaleTimeString());
          }
        })
        .catch(function () { say(what + " — could not refresh; reload the page."); });
    }, 500);
  }

  var events = new EventSource(url);
  events.addEventListener("decision", function (event) {
    var d = JSON.parse(event.data);
    document.body.setAttribute("data-last-event", d.gate + "@" + d.version);
    if (!every && !d.changed) {
      return;
    }
    refresh("Decision " + d.version + " on " + d.gate + " (" + d.action + ")");
  });
  events.addEventListener("refresh", function () { refresh("Updates"); });
  events.addEventListener("open", function () { document.body.setAttribute("data-live", "yes"); });
  events.addEventListener("error", function () { document.body.setAttribute("data-live", "no"); });
})();
