import { NodeReactor } from "@twisted-ts/internet/reactor";
import { processCases } from "./_process_cases.js";

processCases(() => new NodeReactor(), "");
