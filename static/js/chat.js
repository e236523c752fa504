/*
 * Chat page enhancement (plain JavaScript, no framework, loaded from 'self' only).
 *
 * Without this file the page works through plain POST forms (post/redirect/get).
 * With it, the composer and the quick-reply buttons post JSON to the API
 * (/api/conversations/{id}/messages/) and the reply is appended without a reload.
 * When the server streams (Content-Type: text/event-stream) the reply is shown as it
 * arrives: "delta" events append text, "done" carries the stored messages (the same
 * shapes as the JSON 201 body), "error" ends the stream with a notice.
 * Everything user-visible is set with textContent: no HTML is ever parsed from data.
 */
(function () {
  "use strict";

  var root = document.querySelector(".chat[data-api-url]");
  if (!root || !window.fetch || !window.TextDecoder) {
    return;
  }
  var texts = JSON.parse(document.getElementById("chat-ui-texts").textContent);
  var list = document.getElementById("message-list");
  var statusBox = document.getElementById("chat-status");
  var composer = document.getElementById("composer");
  var textarea = composer ? composer.querySelector("textarea") : null;
  var counter = composer ? composer.querySelector("[data-count]") : null;
  var apiUrl = root.getAttribute("data-api-url");
  var maxChars = parseInt(root.getAttribute("data-max-chars"), 10) || 2000;
  var busy = false;

  /* ---- small helpers --------------------------------------------------------- */

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) {
      return meta.content;
    }
    var input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); })
      .join("");
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function setMultilineText(node, text) {
    node.textContent = "";
    String(text || "").split("\n").forEach(function (line, index) {
      if (index > 0) {
        node.appendChild(document.createElement("br"));
      }
      node.appendChild(document.createTextNode(line));
    });
  }

  function label(kind, count) {
    var pair = texts.labels[kind] || texts.labels["*"];
    return count === 1 ? pair[0] : pair[1];
  }

  function joinParts(parts) {
    if (parts.length <= 1) {
      return parts.join("");
    }
    return parts.slice(0, -1).join(", ") + " and " + parts[parts.length - 1];
  }

  /* The same sentences as chat/notices.py. */
  function redactionNotice(redactions) {
    var parts = Object.keys(redactions || {}).sort().filter(function (kind) {
      return Number(redactions[kind]) > 0;
    }).map(function (kind) {
      var count = Number(redactions[kind]);
      return count + " " + label(kind, count);
    });
    return parts.length ? "We removed " + joinParts(parts) + " before saving your message" : "";
  }

  function blockedNotice(types) {
    var labels = [];
    (types || []).forEach(function (kind) {
      var text = label(kind, 1);
      if (labels.indexOf(text) === -1) {
        labels.push(text);
      }
    });
    if (!labels.length) {
      labels.push(texts.labels["*"][0]);
    }
    return "Your message was not sent because it contained: " + labels.join(", ") +
      ". Please remove it and try again.";
  }

  function retryAfterSeconds(response) {
    var header = response.headers.get("Retry-After");
    if (!header) {
      return 0;
    }
    var seconds = parseInt(header, 10);
    if (!isNaN(seconds)) {
      return Math.max(seconds, 0);
    }
    var when = Date.parse(header);
    return isNaN(when) ? 0 : Math.max(Math.ceil((when - Date.now()) / 1000), 0);
  }

  function rateLimitNotice(seconds) {
    if (!seconds) {
      return "You're sending messages too quickly — try again in a moment";
    }
    return "You're sending messages too quickly — try again in " + seconds +
      (seconds === 1 ? " second" : " seconds");
  }

  /* ---- notices ----------------------------------------------------------------- */

  function clearStatus() {
    statusBox.textContent = "";
  }

  function showNotice(text, isError) {
    var p = el("p", "notice" + (isError ? " error" : ""), text);
    statusBox.appendChild(p);
    return p;
  }

  function offerNewConversation(text) {
    var box = showNotice(text, true);
    var form = el("form", "inline-form");
    form.method = "post";
    form.action = root.getAttribute("data-new-url");
    var token = el("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    var button = el("button", "", "Start a new conversation");
    button.type = "submit";
    form.appendChild(token);
    form.appendChild(button);
    box.appendChild(form);
    if (composer) {
      composer.hidden = true;
    }
    removeQuickReplies();
    button.focus();
  }

  /* ---- message rendering (the same structure as chat/_message.html) ------------ */

  function addNote(item, text, className) {
    if (text) {
      item.appendChild(el("p", "message-note " + (className || "notice"), text));
    }
  }

  function userElement(text, pending) {
    var item = el("li", "message message-user" + (pending ? " message-pending" : ""));
    item.appendChild(el("p", "message-role", "You"));
    var body = el("div", "message-text");
    setMultilineText(body, text);
    item.appendChild(body);
    if (pending) {
      item.appendChild(el("p", "message-note muted", "Sending…"));
    }
    return item;
  }

  function fillUser(item, message) {
    item.className = "message message-user";
    item.setAttribute("data-message-id", message.id);
    item.textContent = "";
    item.appendChild(el("p", "message-role", "You"));
    var body = el("div", "message-text");
    setMultilineText(body, message.text);
    item.appendChild(body);
    addNote(item, redactionNotice(message.redactions));
  }

  function assistantElement() {
    var item = el("li", "message message-assistant");
    var role = el("p", "message-role");
    role.appendChild(el("span", "badge", "AI assistant"));
    item.appendChild(role);
    item.appendChild(el("div", "message-text"));
    return item;
  }

  function fillAssistant(item, reply) {
    item.className = "message message-assistant" +
      (reply.status === "incomplete" ? " message-incomplete" : "");
    item.removeAttribute("aria-busy");
    item.setAttribute("data-message-id", reply.id);
    setMultilineText(item.querySelector(".message-text"), reply.text);
    Array.prototype.forEach.call(item.querySelectorAll(".message-note"), function (n) {
      n.remove();
    });
    if (reply.status === "incomplete") {
      addNote(item, texts.incomplete, "");
    }
    var notice = reply.notice || (reply.source === "fallback" ? texts.fallback : "");
    addNote(item, notice);
    if (reply.quick_replies && reply.quick_replies.length) {
      item.appendChild(quickReplyForm(reply.quick_replies, reply.id));
    }
  }

  function quickReplyForm(quickReplies, messageId) {
    var form = el("form", "quick-replies");
    form.method = "post";
    form.action = composer ? composer.action : "";
    form.setAttribute("data-chat-form", "");
    var token = el("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    form.appendChild(token);
    var labelId = "qr-label-" + messageId;
    var caption = el("p", "visually-hidden", "Suggested answers");
    caption.id = labelId;
    form.appendChild(caption);
    var group = el("div", "quick-reply-buttons");
    group.setAttribute("role", "group");
    group.setAttribute("aria-labelledby", labelId);
    quickReplies.forEach(function (item) {
      var button = el("button", "secondary quick-reply", item.label);
      button.type = "submit";
      button.name = "quick_reply";
      button.value = item.value;
      group.appendChild(button);
    });
    form.appendChild(group);
    return form;
  }

  function removeQuickReplies() {
    Array.prototype.forEach.call(list.querySelectorAll(".quick-replies"), function (f) {
      f.remove();
    });
  }

  function markLatest(item) {
    var previous = document.getElementById("latest");
    if (previous) {
      previous.removeAttribute("id");
    }
    item.id = "latest";
  }

  function scrollIntoView(item) {
    if (item && typeof item.scrollIntoView === "function") {
      item.scrollIntoView({ block: "nearest" });
    }
  }

  /* ---- server-sent events ------------------------------------------------------- */

  function sseParser(onEvent) {
    var buffer = "";
    function dispatch(block) {
      var name = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (!line || line.charAt(0) === ":") {
          return;
        }
        var colon = line.indexOf(":");
        var field = colon === -1 ? line : line.slice(0, colon);
        var value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.charAt(0) === " ") {
          value = value.slice(1);
        }
        if (field === "event") {
          name = value;
        } else if (field === "data") {
          data.push(value);
        }
      });
      if (data.length) {
        onEvent(name, data.join("\n"));
      }
    }
    return {
      push: function (chunk) {
        buffer += chunk.replace(/\r/g, "");
        var index = buffer.indexOf("\n\n");
        while (index !== -1) {
          dispatch(buffer.slice(0, index));
          buffer = buffer.slice(index + 2);
          index = buffer.indexOf("\n\n");
        }
      },
      end: function () {
        if (buffer.trim()) {
          dispatch(buffer);
        }
        buffer = "";
      }
    };
  }

  function readStream(response, pending) {
    var bubble = assistantElement();
    bubble.classList.add("message-streaming");
    bubble.setAttribute("aria-busy", "true");
    var textNode = bubble.querySelector(".message-text");
    var streamed = "";
    var finished = false;
    list.appendChild(bubble);
    var parser = sseParser(function (name, raw) {
      var data;
      try {
        data = JSON.parse(raw);
      } catch (err) {
        return;
      }
      if (name === "delta" && !finished) {
        streamed += data.text || "";
        setMultilineText(textNode, streamed);
      } else if (name === "done") {
        finished = true;
        completeTurn(pending, data, bubble);
      } else if (name === "error") {
        finished = true;
        streamFailed(pending, bubble, streamed, data.message);
      }
    });
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    function pump() {
      return reader.read().then(function (step) {
        if (step.done) {
          parser.push(decoder.decode());
          parser.end();
          if (!finished) {
            streamFailed(pending, bubble, streamed, "");
          }
          return;
        }
        parser.push(decoder.decode(step.value, { stream: true }));
        return pump();
      });
    }
    return pump().catch(function () {
      if (!finished) {
        streamFailed(pending, bubble, streamed, "");
      }
    });
  }

  function streamFailed(pending, bubble, streamed, message) {
    pending.classList.remove("message-pending");
    Array.prototype.forEach.call(pending.querySelectorAll(".message-note"), function (n) {
      n.remove();
    });
    bubble.removeAttribute("aria-busy");
    bubble.classList.remove("message-streaming");
    if (streamed) {
      bubble.classList.add("message-incomplete");
      addNote(bubble, texts.incomplete, "");
    } else {
      bubble.remove();
    }
    showNotice(message || "The reply was interrupted. Please try again.", true);
    finishSend(false);
  }

  /* ---- sending -------------------------------------------------------------------- */

  function completeTurn(pending, data, bubble) {
    // A message sent after this conversation closed was stored in its successor.
    var holder = data.conversation_id;
    if (holder && String(holder) !== root.getAttribute("data-conversation-id")) {
      var url = root.getAttribute("data-detail-url").replace("/0/", "/" + holder + "/");
      window.location.assign(url + "#latest");
      return;
    }
    removeQuickReplies();
    fillUser(pending, data.user_message);
    var item = bubble || assistantElement();
    fillAssistant(item, data.reply);
    if (!bubble) {
      list.appendChild(item);
    }
    markLatest(item);
    if (textarea) {
      textarea.value = "";
      updateCount();
    }
    finishSend(true);
    scrollIntoView(item);
  }

  function readJson(response) {
    return response.json().catch(function () { return {}; });
  }

  function failed(response, pending) {
    pending.remove();
    return readJson(response).then(function (body) {
      var code = body.error || "";
      if (response.status === 422 && code === "phi_blocked") {
        showNotice(blockedNotice(body.types), true);
      } else if (response.status === 429) {
        showNotice(rateLimitNotice(retryAfterSeconds(response)), true);
      } else if (response.status === 409 && code === "conversation_closed") {
        offerNewConversation(texts.closed);
        finishSend(false, true);
        return;
      } else if (response.status === 401 || code === "session_expired") {
        showNotice("Your session has ended. Reload the page to log in again.", true);
      } else if (response.status >= 500) {
        showNotice("Something went wrong on our side. Your message was not sent — " +
          "please try again.", true);
      } else {
        showNotice(body.message || "Your message was not sent. Please try again.", true);
      }
      finishSend(false);
    });
  }

  function post(body, key, attempt) {
    return fetch(apiUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "text/event-stream, application/json;q=0.9",
        "X-CSRFToken": csrfToken(),
        "Idempotency-Key": key
      },
      body: JSON.stringify(body)
    }).catch(function (err) {
      // One retry with the same key: the server answers a repeat from its store.
      if (attempt < 1) {
        return post(body, key, attempt + 1);
      }
      throw err;
    });
  }

  function setBusy(value) {
    busy = value;
    list.setAttribute("aria-busy", value ? "true" : "false");
    Array.prototype.forEach.call(root.querySelectorAll("form[data-chat-form] button"),
      function (button) { button.disabled = value; });
  }

  function finishSend(ok, keepFocus) {
    setBusy(false);
    if (!keepFocus && textarea && composer && !composer.hidden) {
      textarea.focus();
    }
  }

  function send(body, shownText) {
    if (busy) {
      return;
    }
    clearStatus();
    setBusy(true);
    var pending = userElement(shownText, true);
    list.appendChild(pending);
    scrollIntoView(pending);
    post(body, newKey(), 0).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (response.ok && type.indexOf("text/event-stream") !== -1 && response.body) {
        return readStream(response, pending);
      }
      if (response.ok) {
        return readJson(response).then(function (data) {
          if (data.user_message && data.reply) {
            completeTurn(pending, data, null);
          } else {
            pending.remove();
            showNotice("Your message was not sent. Please try again.", true);
            finishSend(false);
          }
        });
      }
      return failed(response, pending);
    }).catch(function () {
      pending.remove();
      showNotice("We couldn't reach the server. Your message was not sent — " +
        "check your connection and try again.", true);
      finishSend(false);
    });
  }

  /* ---- wiring ---------------------------------------------------------------------- */

  function updateCount() {
    if (!counter || !textarea) {
      return;
    }
    counter.textContent = String(textarea.value.length);
    counter.parentNode.classList.toggle("near-limit", textarea.value.length > maxChars * 0.9);
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-chat-form")) {
      return;
    }
    event.preventDefault();
    if (form === composer) {
      var text = textarea.value.trim();
      if (!text) {
        clearStatus();
        showNotice("Type a message or choose one of the options.", true);
        textarea.focus();
        return;
      }
      send({ text: textarea.value }, textarea.value);
      return;
    }
    var button = event.submitter;
    if (button && button.name === "quick_reply") {
      send({ quick_reply: button.value }, button.textContent);
    }
  });

  if (textarea) {
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing &&
          !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        if (typeof composer.requestSubmit === "function") {
          composer.requestSubmit();
        } else {
          composer.dispatchEvent(new Event("submit", { cancelable: true, bubbles: true }));
        }
      }
    });
    textarea.addEventListener("input", updateCount);
    updateCount();
  }
})();
