// Playground's own Blueprint engine (@wp-playground/blueprints), run
// unchanged against our client by host/src/blueprint.rs.
export { compileBlueprintV1 as compile, runBlueprintV1Steps as run } from '@wp-playground/blueprints';
