// shopkeeper staff console: live inbox and thread over server-sent events.
// Served from /staff/static/staff.js so the Content-Security-Policy needs no inline script.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const live = document.getElementById("live");
  const countBadge = document.getElementById("waiting-count");
  const baseTitle = document.title;

  function showWaiting(count) {
    if (!countBadge) return;
    countBadge.hidden = !(count > 0);
    countBadge.textContent = String(count);
    document.title = count > 0 ? `(${count}) ${baseTitle}` : baseTitle;
  }

  // Replace a region with the server-rendered (autoescaped) fragment at its data-live-src.
  async function refresh(region) {
    if (!region) return;
    try {
      const res = await fetch(region.dataset.liveSrc, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (res.status === 401) { window.location.assign("/staff/login"); return; }
      if (!res.ok) return;
      const waiting = res.headers.get("X-Waiting-Count");
      region.innerHTML = await res.text();
      if (waiting !== null) showWaiting(Number(waiting));
      region.dispatchEvent(new CustomEvent("refreshed", {bubbles: true}));
    } catch (e) { /* the next event or reconnect refreshes again */ }
  }

  const timers = new Map();
  function soon(region) {  // coalesce bursts of events into one fetch
    if (!region || timers.has(region)) return;
    timers.set(region, setTimeout(() => { timers.delete(region); refresh(region); }, 150));
  }

  function scrollTranscript() {
    const transcript = document.getElementById("transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;
  }

  const inbox = document.getElementById("inbox");
  const thread = document.getElementById("thread-live");
  if (inbox) showWaiting(Number(inbox.dataset.waiting || 0));
  if (thread) {
    scrollTranscript();
    thread.addEventListener("refreshed", () => {
      scrollTranscript();
      const header = document.getElementById("thread-header");
      const changed = document.getElementById("changed");
      if (header && changed && header.dataset.state !== thread.dataset.renderedState) changed.hidden = false;
    });
  }

  // Canned reply picker: put the text in the reply box to edit before sending.
  const picker = document.getElementById("canned-pick");
  if (picker) {
    picker.addEventListener("change", () => {
      const option = picker.selectedOptions[0];
      const target = document.getElementById(picker.dataset.target);
      if (option && option.dataset.text && target) { target.value = option.dataset.text; target.focus(); }
      picker.value = "";
    });
  }

  if (!page || page === "login" || !window.EventSource) return;
  const conversationId = body.dataset.conversation || null;
  const source = new EventSource("/staff/events");
  source.addEventListener("open", () => {
    if (live) { live.textContent = "live"; live.classList.add("on"); }
    body.dataset.live = "open";
    // events may have been missed while (re)connecting
    soon(inbox); soon(thread);
  });
  source.addEventListener("error", () => {
    if (live) { live.textContent = "reconnecting"; live.classList.remove("on"); }
    body.dataset.live = "closed";
  });
  source.addEventListener("message", (ev) => {
    let event;
    try { event = JSON.parse(ev.data); } catch (e) { return; }
    soon(inbox);
    if (thread && event.conversation_id === conversationId) soon(thread);
    else if (countBadge && !inbox) refreshCount();
  });

  // On pages without the inbox, keep the nav badge current from the inbox fragment's header.
  async function refreshCount() {
    try {
      const res = await fetch("/staff/inbox/partial", {credentials: "same-origin"});
      const waiting = res.headers.get("X-Waiting-Count");
      if (res.ok && waiting !== null) showWaiting(Number(waiting));
    } catch (e) { /* ignore */ }
  }
  if (!inbox) refreshCount();
})();
