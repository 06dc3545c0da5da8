// The console's entry point.
import { render } from "preact";
import { App } from "./app";
import "./styles.css";
import "./theme";

render(<App />, document.getElementById("app")!);
