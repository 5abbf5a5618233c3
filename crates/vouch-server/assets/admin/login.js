// Sign-in: posts the token as JSON; the server answers with the session cookies.

const form = document.getElementById("login-form");
const input = document.getElementById("token");
const errorBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.focus();
  input.select();
}

if (new URLSearchParams(location.search).get("error") === "invalid") {
  showError("That admin token is not valid.");
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    const resp = await fetch("/admin/login", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ token: input.value.trim() }),
    });
    if (resp.ok) {
      location.assign("/admin#/environments");
      return;
    }
    let message = "Sign-in failed.";
    try {
      message = (await resp.json()).error.message;
    } catch {
      /* keep the generic message */
    }
    showError(message);
  } catch (e) {
    showError(`Vouch could not be reached (${e.message}).`);
  } finally {
    submit.disabled = false;
    submit.textContent = "Sign in";
  }
});
