// An empty attributes object with room for a parsed, chained record's attributes inside it.
//
// The SDK starts each record's attributes as `{}`: four properties fit in the object, the rest go
// to a separate property array, which V8 grows three slots at a time. A parsed auth record gets 25
// to 30 attributes (the source's, the parser's, the chain's), so eight arrays were allocated and
// copied for each, about 1.2 KB of the record's allocation. An object made by this constructor
// holds them in place: V8 sizes a constructor's objects by the `this.<name> =` assignments in its
// body, and once its first few objects are built (slack tracking) keeps as many slots as the
// largest of them used. The placeholders are assigned only by the calls below, at load: they fix
// that size before any record is seen, so that a first few short records cannot shrink it.
// The object is an ordinary one: Object.prototype, keys in insertion order, fast properties.
import type { Attributes } from '@opentelemetry/api';

type Placeholders = Record<`p${number}`, number>;

function RoomyAttributes(this: Placeholders, placeholders: boolean): void {
  if (!placeholders) return;
  this.p0 = 0; this.p1 = 0; this.p2 = 0; this.p3 = 0; this.p4 = 0; this.p5 = 0; this.p6 = 0; this.p7 = 0;
  this.p8 = 0; this.p9 = 0; this.p10 = 0; this.p11 = 0; this.p12 = 0; this.p13 = 0; this.p14 = 0; this.p15 = 0;
  this.p16 = 0; this.p17 = 0; this.p18 = 0; this.p19 = 0; this.p20 = 0; this.p21 = 0; this.p22 = 0; this.p23 = 0;
  this.p24 = 0; this.p25 = 0; this.p26 = 0; this.p27 = 0; this.p28 = 0; this.p29 = 0; this.p30 = 0; this.p31 = 0;
}
RoomyAttributes.prototype = Object.prototype;

const Roomy = RoomyAttributes as unknown as new (placeholders: boolean) => Attributes;
for (let i = 0; i < 8; i++) new Roomy(true);

/** A new, empty attributes object with room for 32 attributes without a property array. */
export function roomyAttributes(): Attributes {
  return new Roomy(false);
}
