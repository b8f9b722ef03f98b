# Calls an upstream API through thub's proxy. The browser only ever talks to the hub; the
# secret header configured in thub.toml is added on the server side.
import json

from pyscript import document, fetch

response = await fetch("/proxy/weather/forecast?latitude=42.41&longitude=-71.12&current=temperature_2m")
body = await response.text()
try:
    shown = json.dumps(json.loads(body), indent=2)
except ValueError:
    shown = body
document.querySelector("#result").innerText = f"HTTP {response.status}\n{shown}"
