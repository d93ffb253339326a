// tonearm's passkeys: the only script its pages run. A button with
// data-options (passkey_login on the sign-in pages, add_passkey on the
// account page) asks tonearm for WebAuthn options, hands them to the
// browser, and posts the browser's answer in the button's own form (in the
// hidden field data-field), so the server decides everything.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return; // the buttons stay hidden
  }

  function bytes(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function text(buf) {
    var b = new Uint8Array(buf);
    var s = "";
    for (var i = 0; i < b.length; i++) {
      s += String.fromCharCode(b[i]);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function ids(list) {
    (list || []).forEach(function (c) {
      c.id = bytes(c.id);
    });
  }

  async function options(button) {
    var body = new URLSearchParams();
    body.set("csrf_token", button.form.elements.csrf_token.value);
    var r = await fetch(button.dataset.options, {
      method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" }
    });
    if (r.status === 429) {
      throw new Error("Too many passkey attempts from here. Try again later.");
    }
    if (!r.ok) {
      throw new Error("The passkey could not be started. Reload the page and try again.");
    }
    return (await r.json()).publicKey;
  }

  function common(cred) {
    return {
      id: cred.id, rawId: text(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  async function signIn(button) {
    var pk = await options(button);
    pk.challenge = bytes(pk.challenge);
    ids(pk.allowCredentials);
    var cred = await navigator.credentials.get({ publicKey: pk });
    var answer = common(cred);
    answer.response = {
      clientDataJSON: text(cred.response.clientDataJSON),
      authenticatorData: text(cred.response.authenticatorData),
      signature: text(cred.response.signature),
      userHandle: cred.response.userHandle ? text(cred.response.userHandle) : undefined
    };
    return answer;
  }

  async function register(button) {
    var pk = await options(button);
    pk.challenge = bytes(pk.challenge);
    pk.user.id = bytes(pk.user.id);
    ids(pk.excludeCredentials);
    var cred = await navigator.credentials.create({ publicKey: pk });
    var answer = common(cred);
    answer.response = {
      clientDataJSON: text(cred.response.clientDataJSON),
      attestationObject: text(cred.response.attestationObject),
      transports: cred.response.getTransports ? cred.response.getTransports() : []
    };
    return answer;
  }

  function say(button, message) {
    var p = document.getElementById(button.id + "_error");
    if (p) {
      p.textContent = message;
      p.hidden = false;
    }
  }

  [["passkey_login", signIn], ["add_passkey", register]].forEach(function (pair) {
    var button = document.getElementById(pair[0]);
    if (!button) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        var answer = await pair[1](button);
        button.form.elements[button.dataset.field].value = JSON.stringify(answer);
        button.form.submit();
      } catch (e) {
        button.disabled = false;
        if (e && (e.name === "NotAllowedError" || e.name === "AbortError")) {
          say(button, "The passkey request was cancelled or timed out.");
        } else if (e && e.name === "InvalidStateError") {
          say(button, "This device already holds a passkey for your account.");
        } else {
          say(button, (e && e.message) || "The passkey could not be used.");
        }
      }
    });
  });
})();
