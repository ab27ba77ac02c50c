// Types for the modelling libraries that ship none.
declare module 'bpmn-js-differ' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export function diff(before: any, after: any): any;
}
declare module 'dmn-js/lib/Modeler' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const DmnModeler: any;
  export default DmnModeler;
}
