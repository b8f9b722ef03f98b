# A chat over thub's WebSocket channels: every message sent to /channel/chat reaches every
# other page connected to it (on any thub instance, when they share Redis). The session cookie
# set by /login authenticates the socket; no token appears in the page.
from pyscript import document, window
from pyscript.ffi import create_proxy

scheme = "wss" if window.location.protocol == "https:" else "ws"
socket = window.WebSocket.new(f"{scheme}://{window.location.host}/channel/chat")
messages = document.querySelector("#messages")
text = document.querySelector("#text")


def show(line, mine=False):
    item = document.createElement("li")
    item.textContent = line
    if mine:
        item.classList.add("mine")
    messages.appendChild(item)


def on_message(event):
    show(event.data)


def on_submit(event):
    event.preventDefault()
    socket.send(text.value)
    show(text.value, mine=True)
    text.value = ""


socket.onmessage = create_proxy(on_message)
document.querySelector("#composer").addEventListener("submit", create_proxy(on_submit))
