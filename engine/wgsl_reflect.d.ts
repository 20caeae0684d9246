// wgsl_reflect's package.json points `main` at a CommonJS file inside a `"type": "module"`
// package, which Node cannot load; we import its ES module build by path and borrow the types.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
