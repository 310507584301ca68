import WebSocket from "ws"; // in a browser, leave this line out
import { HeraldClient } from "@herald/client";

const client = new HeraldClient({
  url: process.env.HERALD_WS ?? "ws://127.0.0.1:8080/ws",
  token: process.env.HERALD_TOKEN, // a user's JWT: herald token --sub 123
  WebSocket,
});
client.on("notification", (n) => console.log(n.offline ? "(offline)" : "(live)", n.content));
client.on("close", (c) => console.log("closed:", c.message));
client.connect();
