// The chat page: a conversation sent to /v1/chat/completions of this server, the answer streamed in as
// server-sent events. Plain JavaScript, no libraries: everything comes from the server that serves the page.
"use strict";

const $ = (id) => document.getElementById(id);

const chat = {
  model: null, // the id /v1/models reports: requests must name it
  history: [], // [{role, content}], the whole conversation, sent with every turn
  controller: null, // the AbortController of the answer being streamed, if any
};

async function loadModel() {
  try {
    const response = await fetch("/v1/models");
    const models = await response.json();
    chat.model = models.data[0].id;
    $("model").textContent = chat.model;
  } catch (error) {
    $("model").textContent = "no model: is the server running?";
  }
}

function addMessage(role, text) {
  $("messages").querySelector(".hint")?.remove();
  const element = document.createElement("div");
  element.className = `message ${role}`;
  element.textContent = text; // text, never HTML: the model's output is not trusted markup
  $("messages").append(element);
  element.scrollIntoView({ block: "end" });
  return element;
}

function setBusy(isBusy) {
  $("send").disabled = isBusy;
  $("stop").disabled = !isBusy;
}

// Yields the parsed `data:` payload of each server-sent event; stops at [DONE].
async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

// Tokens per second from the first token on: the prompt's processing is latency, not speed.
class Speed {
  constructor() { this.tokens = 0; this.firstAt = null; }
  add() {
    this.tokens += 1;
    this.firstAt ??= performance.now();
  }
  show(tokens = this.tokens) {
    const seconds = this.firstAt === null ? 0 : (performance.now() - this.firstAt) / 1000;
    const rate = tokens > 1 && seconds > 0 ? `${((tokens - 1) / seconds).toFixed(1)} tokens/s` : "";
    $("speed").textContent = `${tokens} tokens ${rate ? "· " + rate : ""}`;
  }
}

async function send(text) {
  const history = chat.history; // "New chat" replaces it, even while this answer streams
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const answer = addMessage("assistant", "");
  answer.dataset.state = "streaming";
  chat.controller = new AbortController();
  setBusy(true);
  const speed = new Speed();
  let content = "";
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: chat.model,
        messages: history,
        stream: true,
        stream_options: { include_usage: true },
        temperature: Number($("temperature").value),
        max_tokens: Number($("max-tokens").value),
      }),
      signal: chat.controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    }
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) speed.show(chunk.usage.completion_tokens);
      const delta = chunk.choices[0]?.delta?.content;
      if (!delta) continue;
      speed.add();
      content += delta;
      answer.textContent = content;
      answer.scrollIntoView({ block: "end" });
      speed.show();
    }
    answer.dataset.state = "done";
  } catch (error) {
    if (error.name === "AbortError") {
      answer.dataset.state = "stopped"; // the server cancels the generation when the connection closes
      speed.show();
    } else {
      answer.dataset.state = "error";
      addMessage("error", `Error: ${error.message}`);
    }
  } finally {
    if (answer.dataset.state === "error") history.pop(); // the turn failed: let the user send it again
    else history.push({ role: "assistant", content });
    chat.controller = null;
    setBusy(false);
    $("prompt").focus();
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || chat.controller) return;
  $("prompt").value = "";
  send(text);
});

$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("stop").addEventListener("click", () => chat.controller?.abort());

$("new-chat").addEventListener("click", () => {
  chat.controller?.abort();
  chat.history = [];
  $("messages").replaceChildren();
  $("speed").textContent = "";
  $("prompt").focus();
});

loadModel();
