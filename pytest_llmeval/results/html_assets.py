"""The HTML report's inline stylesheet and script (no network, no library).

The script reads the JSON in ``#llmeval-data`` and builds the page with DOM calls only
(``textContent``, ``createElementNS`` for SVG): no data ever goes through ``innerHTML``.
The cases table is virtual: a spacer of the full height, and only the rows in view exist.
"""

from __future__ import annotations

CSS = """
:root{--pass:#1a7f37;--fail:#b35900;--error:#cf222e;--muted:#656d76;--line:#d0d7de;--bg2:#f6f8fa;--hi:#ddf4ff}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328}
#app{max-width:1400px;margin:0 auto;padding:16px 24px}h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:22px 0 8px}
.banner{padding:8px 12px;border-radius:6px;margin:8px 0;font-weight:600}.banner.ok{background:#dafbe1;color:var(--pass)}
.banner.bad{background:#ffebe9;color:var(--error)}.banner.warn{background:#fff8c5;color:#7d4e00}.banner ul{margin:4px 0 0;font-weight:400}
.muted{color:var(--muted)}.scroll{overflow-x:auto}.small{font-size:11px}td.name{max-width:460px;overflow-wrap:anywhere}td.nw{white-space:nowrap}td.diff{max-width:280px}table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600;white-space:nowrap}#suites{font-size:13px}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.ci{white-space:nowrap}
.o-pass{color:var(--pass)}.o-fail{color:var(--fail)}.o-error{color:var(--error);font-weight:600}.o-skipped,.o-xfailed{color:var(--muted)}
.v-REGRESSED,.v-WORSE,.v-INCOMPARABLE,.v-NEW{color:var(--error);font-weight:600}.v-IMPROVED,.v-BETTER{color:var(--pass);font-weight:600}
.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:center;margin:8px 0}.filters input[type=search]{flex:1;min-width:220px;padding:4px 8px}
.grid{border:1px solid var(--line);height:420px;overflow:auto;position:relative}.spacer{position:relative}
.row{position:absolute;left:0;right:0;height:28px;display:grid;grid-template-columns:1.3fr 2fr 70px 110px 120px 50px;gap:8px;
padding:4px 8px;border-bottom:1px solid var(--bg2);cursor:pointer;white-space:nowrap}.row>span{overflow:hidden;text-overflow:ellipsis}
.row:hover{background:var(--bg2)}.row.sel{background:var(--hi)}.head{display:grid;grid-template-columns:1.3fr 2fr 70px 110px 120px 50px;gap:8px;
padding:4px 8px;background:var(--bg2);font-weight:600;border:1px solid var(--line);border-bottom:0}
#detail{border:1px solid var(--line);border-radius:6px;padding:10px 14px;margin-top:12px}#detail:empty{display:none}
pre{white-space:pre-wrap;word-break:break-word;background:var(--bg2);padding:8px;border-radius:4px;margin:4px 0;max-height:360px;overflow:auto}
.turn{border-left:3px solid var(--line);padding:2px 8px;margin:6px 0}.turn .role{font-weight:600;font-size:12px;text-transform:uppercase;color:var(--muted)}
.turn.user{border-color:#0969da}.turn.assistant{border-color:var(--pass)}.turn.system{border-color:#8250df}.turn.tool{border-color:#bf8700}.turn.error{border-color:var(--error,#cf222e)}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:12px}.kv td:first-child{color:var(--muted);width:160px}
svg text{font:11px system-ui,sans-serif;fill:#57606a}.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
.chart{border:1px solid var(--line);border-radius:6px;padding:6px}.beyond{border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin:8px 0}
.beyond h3{font-size:14px;margin:4px 0}.beyond table{width:auto;margin:6px 0}.beyond li{overflow-wrap:anywhere}.tag{font-size:11px;padding:0 5px;border-radius:8px;background:var(--bg2)}
"""

SCRIPT = r"""
(function(){
'use strict';
var D=JSON.parse(document.getElementById('llmeval-data').textContent);
var app=document.getElementById('app');
var SVG='http://www.w3.org/2000/svg';
function el(tag,attrs,kids){var e=document.createElement(tag);for(var k in attrs||{}){if(k==='text')e.textContent=attrs[k];else if(k==='cls')e.className=attrs[k];else e.setAttribute(k,attrs[k]);}
(kids||[]).forEach(function(c){if(c!=null)e.appendChild(typeof c==='string'?document.createTextNode(c):c);});return e;}
function sv(tag,attrs){var e=document.createElementNS(SVG,tag);for(var k in attrs)e.setAttribute(k,attrs[k]);return e;}
function pct(x){return x==null?'-':(100*x).toFixed(1)+'%';}
function word(o){return o==='fail'?'missed':o;}  // one word for a miss, as the terminal says it
function pts(x){return x==null?'':(x>=0?'+':'')+(100*x).toFixed(1)+' pts';}
function pv(p){return p==null?'':(p<0.001?'p<0.001':'p='+p.toPrecision(2));}
function num(x){return x==null?'-':(Math.round(x)===x?String(x):x.toFixed(3));}
var suites=D.suites||[],cases=D.cases||[],names=suites.map(function(s){return s.name;});
function sname(i){return names[i]||'';}

function header(){
  app.appendChild(el('h1',{text:D.title||'pytest-llmeval report'}));
  var s=D.summary||{},bits=[(s.passed||0)+' passed',(s.failed||0)+' missed'];
  if(s.errors)bits.push(s.errors+' errors');if(s.skipped)bits.push(s.skipped+' skipped');
  var sub=bits.join(', ')+' in '+suites.length+' suites';
  if(D.timings&&D.timings.started)sub+=' \u00b7 run '+D.timings.started;
  if(D.mode==='compare')sub='B = '+D.labels[1]+', A = '+D.labels[0]+' \u00b7 '+sub;
  app.appendChild(el('div',{cls:'muted',text:sub}));
  if(D.mode==='compare'){app.appendChild(el('div',{cls:'banner '+(D.verdict==='DISCARD'||D.verdict==='MIXED'?'bad':'ok'),text:'verdict: '+D.verdict}));return;}
  var g=D.gate||{};
  var fl=g.flagged||[],warn=!g.failed&&fl.length;
  var b=el('div',{cls:'banner '+(g.failed?'bad':warn?'warn':'ok'),id:'gate',text:g.failed?'gate failed':warn?'gate passed, '+fl.length+' flagged for answers cut at max_new_tokens':'gate passed'});
  if(g.failed||warn){var ul=el('ul');(g.failed?g.failures||[]:fl).forEach(function(f){ul.appendChild(el('li',{text:f}));});b.appendChild(ul);}
  app.appendChild(b);
}

function bar(s){
  var w=110,h=18,x=function(v){return 4+v*(w-8);};
  var svg=sv('svg',{width:w,height:h,viewBox:'0 0 '+w+' '+h,role:'img'});
  svg.appendChild(sv('rect',{x:4,y:8,width:w-8,height:2,fill:'#d0d7de'}));
  svg.appendChild(sv('rect',{x:x(s.ci[0]),y:4,width:Math.max(1,x(s.ci[1])-x(s.ci[0])),height:10,fill:'#54aeff',opacity:0.55}));
  if(s.min!=null)svg.appendChild(sv('rect',{x:x(s.min)-1,y:1,width:2,height:16,fill:'#cf222e'}));
  if(s.verdict&&s.verdict.rate!=null)svg.appendChild(sv('rect',{x:x(s.verdict.rate)-1,y:2,width:2,height:14,fill:'#8c959f'}));
  svg.appendChild(sv('rect',{x:x(s.rate)-2,y:3,width:4,height:12,fill:'#0969da'}));
  var t=sv('title',{});t.textContent=pct(s.rate)+' ['+pct(s.ci[0])+', '+pct(s.ci[1])+']'+(s.min!=null?'; min '+pct(s.min):'')+(s.verdict&&s.verdict.rate!=null?'; '+D.other+' '+pct(s.verdict.rate):'');
  svg.appendChild(t);return svg;
}

function kn(x){return x>=1e4?(x/1e3).toFixed(0)+'k':x>=1e3?(x/1e3).toFixed(1)+'k':num(x);}
function usageText(u){var out=[];if(u.tokens_in!=null)out.push(kn(u.tokens_in)+' in');if(u.tokens_out!=null)out.push(kn(u.tokens_out)+' out');
  var c=u.cost_usd!=null?u.cost_usd:u.cost;if(c!=null)out.push('$'+c.toFixed(4));return out.join(' / ')||'-';}

function overview(){
  app.appendChild(el('h2',{text:'Suites'}));
  var heads=['suite','n','pass','miss','err','rate','95% interval',D.other,'verdict','delta (p)','tokens, cost','fingerprint'];
  var t=el('table',{id:'suites'}),tr=el('tr');heads.forEach(function(h){tr.appendChild(el('th',{text:h}));});t.appendChild(el('thead',{},[tr]));
  var tb=el('tbody');
  suites.forEach(function(s){
    var v=s.verdict||{},diff=[].concat(v.differing||[],(v.across||[]).map(function(f){return 'compared across '+f;}),v.versions||[]);
    var r=el('tr',{'data-suite':s.name},[el('td',{cls:'name',text:s.name}),el('td',{cls:'num',text:String(s.n)}),el('td',{cls:'num',text:String(s.passed)}),
      el('td',{cls:'num',text:String(s.failed)}),el('td',{cls:'num',text:String(s.errors)}),el('td',{cls:'num rate',text:s.n?pct(s.rate):'-'}),
      el('td',{cls:'ci'},[bar(s),el('span',{cls:'muted small',text:' '+pct(s.ci[0])+'\u2013'+pct(s.ci[1])})]),el('td',{cls:'num',text:v.rate!=null?pct(v.rate):'-'}),
      el('td',{cls:'v-'+(v.verdict||''),text:(v.verdict||'-')+(v.recorded?', recorded':'')}),el('td',{cls:'num',text:pts(v.delta)+(v.p!=null?' ('+pv(v.p)+')':'')+(v.comparable===false&&v.delta!=null?', not comparable':'')}),
      el('td',{cls:'nw',text:usageText(s.usage||{})}),el('td',{cls:'muted diff',text:diff.join('; ')})]);
    tb.appendChild(r);
  });
  t.appendChild(tb);app.appendChild(el('div',{cls:'scroll'},[t]));
  if((D.groups||[]).length){
    app.appendChild(el('h2',{text:'Marker groups'}));var g=el('table',{id:'groups'});
    g.appendChild(el('tr',{},['marker','n','pass','rate','95% interval'].map(function(h){return el('th',{text:h});})));
    D.groups.forEach(function(m){g.appendChild(el('tr',{},[el('td',{text:m.name}),el('td',{cls:'num',text:String(m.n)}),el('td',{cls:'num',text:String(m.passed)}),
      el('td',{cls:'num',text:m.n?pct(m.rate):'-'}),el('td',{},[bar({rate:m.rate,ci:m.ci,min:null})])]));});
    app.appendChild(g);
  }
  (D.messages||[]).forEach(function(m){app.appendChild(el('div',{cls:'muted',text:m}));});
}

var ROW=28,shown=[],selected=null,grid,spacer,counter;
function filters(){
  app.appendChild(el('h2',{text:'Cases'}));
  var box=el('div',{cls:'filters'});
  var outcome=el('select',{id:'f-outcome'},['any outcome','pass','fail','error','skipped','xfailed'].map(function(o,i){return el('option',{value:i?o:'',text:o?word(o):o});}));
  var suite=el('select',{id:'f-suite'},[el('option',{value:'',text:'every suite'})].concat(names.map(function(n,i){return el('option',{value:String(i),text:n});})));
  var flip=el('select',{id:'f-flip'},[['','flipped or not'],['any','flipped vs '+D.other],['newly failing','newly failing'],['newly passing','newly passing']].map(function(o){return el('option',{value:o[0],text:o[1]});}));
  var flaky=el('label',{},[el('input',{type:'checkbox',id:'f-flaky'}),' flaky only']);
  var search=el('input',{type:'search',id:'f-search',placeholder:'search prompt and completion'});
  counter=el('span',{id:'count',cls:'muted'});
  [outcome,suite,flip].forEach(function(x){box.appendChild(x);});
  if(cases.some(function(c){return c.k;}))box.appendChild(flaky);
  box.appendChild(search);box.appendChild(counter);app.appendChild(box);
  var timer=null;function later(){clearTimeout(timer);timer=setTimeout(apply,120);}
  [outcome,suite,flip].forEach(function(x){x.addEventListener('change',apply);});
  flaky.firstChild.addEventListener('change',apply);search.addEventListener('input',later);
  var cols=['case','suite','outcome','vs '+D.other,'flipped','flaky'];
  app.appendChild(el('div',{cls:'head'},cols.map(function(c){return el('span',{text:c});})));
  grid=el('div',{cls:'grid',id:'cases'});spacer=el('div',{cls:'spacer'});grid.appendChild(spacer);app.appendChild(grid);
  grid.addEventListener('scroll',draw);
  app.appendChild(el('div',{id:'detail'}));
}
var lower=null;
function haystack(i){if(!lower)lower=new Array(cases.length);if(lower[i]==null){var d=cases[i].d||{};lower[i]=((d.prompt||'')+'\n'+(d.completion||'')+'\n'+cases[i].id).toLowerCase();}return lower[i];}
function apply(){
  var o=document.getElementById('f-outcome').value,s=document.getElementById('f-suite').value,f=document.getElementById('f-flip').value;
  var k=document.getElementById('f-flaky'),q=document.getElementById('f-search').value.trim().toLowerCase();
  shown=[];
  for(var i=0;i<cases.length;i++){var c=cases[i];
    if(o&&c.o!==o)continue;if(s!==''&&String(c.s)!==s)continue;
    if(f==='any'&&!c.f)continue;if(f&&f!=='any'&&c.f!==f)continue;if(k&&k.checked&&!c.k)continue;
    if(q&&haystack(i).indexOf(q)<0)continue;shown.push(i);}
  counter.textContent=shown.length+' of '+cases.length+' cases';
  spacer.style.height=(shown.length*ROW)+'px';grid.style.height=Math.min(420,Math.max(3,shown.length)*ROW+2)+'px';grid.scrollTop=0;draw();
}
function draw(){
  var first=Math.max(0,Math.floor(grid.scrollTop/ROW)-10),last=Math.min(shown.length,first+Math.ceil(grid.clientHeight/ROW)+20);
  while(spacer.firstChild)spacer.removeChild(spacer.firstChild);
  for(var j=first;j<last;j++){(function(j){var c=cases[shown[j]];
    var r=el('div',{cls:'row'+(selected===shown[j]?' sel':''),'data-case':c.id,'data-suite':sname(c.s)},[el('span',{text:c.id+(c.r!=null?':r'+c.r:'')}),el('span',{cls:'muted',text:sname(c.s)}),
      el('span',{cls:'o-'+c.o,text:word(c.o)}),el('span',{cls:'o-'+(c.b||''),text:c.b?word(c.b):'-'}),el('span',{cls:'flip',text:c.f||''}),el('span',{text:c.k?'flaky':''})]);
    r.style.top=(j*ROW)+'px';r.addEventListener('click',function(){open(shown[j]);});spacer.appendChild(r);})(j);}
}
// chat templates whose rendered text the page splits into turns: ChatML (SmolLM2, Qwen), Llama 3, Gemma
var TURNS=[/<\|im_start\|>(\w+)\n([\s\S]*?)(?:<\|im_end\|>\n?|$)/g,/<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n([\s\S]*?)(?:<\|eot_id\|>|$)/g,
  /<start_of_turn>(\w+)\n([\s\S]*?)(?:<end_of_turn>\n?|$)/g];
function turns(p){if(typeof p!=='string')return null;
  for(var i=0;i<TURNS.length;i++){var re=new RegExp(TURNS[i].source,'g'),m,out=[];while((m=re.exec(p))!==null)out.push([m[1],m[2]]);
    if(out.length){if(!out[out.length-1][1].trim())out[out.length-1][1]="(the model's turn)";return out;}}
  return null;}
window.llmevalTurns=turns;
function section(title,node){return el('div',{},[el('h3',{text:title}),node]);}
function prompt(d){
  var box=el('div',{cls:'prompt'});
  var ts=d.turns||turns(d.prompt);
  if(ts){ts.forEach(function(t){box.appendChild(el('div',{cls:'turn '+t[0]},[el('div',{cls:'role',text:t[0]}),el('pre',{text:t[1]})]));});
    var raw=el('details',{},[el('summary',{text:'as sent (raw text)'}),el('pre',{text:d.prompt||''})]);box.appendChild(raw);}
  else box.appendChild(el('pre',{text:d.prompt==null?'(not recorded)':d.prompt}));
  return box;
}
// a workflow case: every message; each tool call and each tool result folded open
function conversation(ms){
  var box=el('div',{cls:'prompt'});
  ms.forEach(function(m){var t=el('div',{cls:'turn '+m.role},[el('div',{cls:'role',text:m.role==='tool'?'tool result: '+m.name:m.role})]);
    var body=m.role==='tool'?el('details',{open:''},[el('summary',{text:(m.text.indexOf('error: ')===0?'error of ':'result of ')+m.name}),el('pre',{text:m.text})]):el('pre',{text:m.text});
    if(m.role!=='assistant'||m.text)t.appendChild(body);
    (m.calls||[]).forEach(function(c){t.appendChild(el('details',{open:''},[el('summary',{text:'call '+c.name}),el('pre',{text:c.arguments})]));});
    box.appendChild(t);});
  return box;
}
function open(i){
  selected=i;draw();var c=cases[i],d=c.d||{},box=document.getElementById('detail');
  while(box.firstChild)box.removeChild(box.firstChild);
  box.appendChild(el('h2',{id:'detail-title',text:sname(c.s)+' \u203a '+c.id}));
  box.appendChild(el('div',{},[el('span',{cls:'o-'+c.o,text:word(c.o)}),' \u00b7 '+D.other+': ',el('span',{cls:'o-'+(c.b||''),text:c.b?word(c.b):'not in '+D.other}),c.f?' \u00b7 '+c.f:'',c.k?' \u00b7 flaky':'']));
  if(d.transcript)box.appendChild(section('Transcript',conversation(d.transcript)));else box.appendChild(section('Prompt',prompt(d)));
  if(d.choices){var ct=el('table');d.choices.forEach(function(x){ct.appendChild(el('tr',{},[el('td',{text:x[0]}),el('td',{cls:'num',text:x[1]==null?'-':x[1].toFixed(3)})]));});box.appendChild(section('Choices (loglikelihood)',ct));}
  if(d.other_completion!==undefined)box.appendChild(el('div',{cls:'cols'},[section('Completion in '+D.other,el('pre',{text:d.other_completion==null?'(none)':d.other_completion})),section('Completion',el('pre',{cls:'completion',text:d.completion==null?'(none)':d.completion}))]));
  else if(!d.choices||d.completion!=null)box.appendChild(section('Completion',el('pre',{cls:'completion',text:d.completion==null?'(none)':d.completion})));
  if(d.reasoning!=null)box.appendChild(el('details',{cls:'reasoning'},[el('summary',{text:d.reasoning_note||'Reasoning'}),el('pre',{text:d.reasoning})]));
  if(d.code)box.appendChild(section('Program run',el('pre',{cls:'code-run',text:d.code})));
  var kv=el('table',{cls:'kv'});function add(k,v){if(v!=null&&v!=='')kv.appendChild(el('tr',{},[el('td',{text:k}),el('td',{},[typeof v==='string'&&v.length>80?el('pre',{text:v}):document.createTextNode(String(v))])]));}
  add('expected',d.expected);add('reason',d.reason);
  for(var s in d.scores||{})add('score '+s,num(d.scores[s]));
  add('tokens in',d.tokens_in);add('tokens out',d.tokens_out);add('latency',d.latency_s!=null?d.latency_s.toFixed(3)+' s':null);
  for(var x in d.extra||{})add(x,d.extra[x]);
  box.appendChild(kv);box.scrollIntoView({block:'nearest'});
}

function history(){
  var keys=Object.keys(D.history||{}).filter(function(k){return D.history[k].length;});
  if(!keys.length)return;
  app.appendChild(el('h2',{text:'History'}));var wrap=el('div',{cls:'charts',id:'history'});
  keys.forEach(function(k){
    var pts=D.history[k],w=420,h=160,l=36,r=10,t=10,b=24,n=pts.length;
    var X=function(i){return n<2?l+(w-l-r)/2:l+i*(w-l-r)/(n-1);},Y=function(v){return t+(1-v)*(h-t-b);};
    var svg=sv('svg',{width:w,height:h,viewBox:'0 0 '+w+' '+h,role:'img'});
    [0,0.5,1].forEach(function(v){svg.appendChild(sv('line',{x1:l,x2:w-r,y1:Y(v),y2:Y(v),stroke:'#eaeef2'}));var tx=sv('text',{x:4,y:Y(v)+4});tx.textContent=(100*v)+'%';svg.appendChild(tx);});
    var path='';pts.forEach(function(p,i){
      svg.appendChild(sv('line',{x1:X(i),x2:X(i),y1:Y(p.ci[0]),y2:Y(p.ci[1]),stroke:'#54aeff','stroke-width':3,opacity:0.6}));
      var c=sv('circle',{cx:X(i),cy:Y(p.rate),r:3.5,fill:'#0969da'});var ti=sv('title',{});
      ti.textContent=p.label+' '+p.at+': '+pct(p.rate)+' ['+pct(p.ci[0])+', '+pct(p.ci[1])+'] n='+p.n;c.appendChild(ti);svg.appendChild(c);
      path+=(i?'L':'M')+X(i).toFixed(1)+' '+Y(p.rate).toFixed(1);});
    svg.insertBefore(sv('path',{d:path,fill:'none',stroke:'#0969da','stroke-width':1.5}),svg.firstChild);
    var lb=sv('text',{x:l,y:h-6});lb.textContent=n+' run'+(n===1?'':'s')+', oldest left';svg.appendChild(lb);
    wrap.appendChild(el('div',{cls:'chart'},[el('div',{text:k}),svg]));
  });
  app.appendChild(wrap);
}
// beyond accuracy: robustness per perturbation, CircularEval and positions, calibration with its
// reliability diagram, the smallest breaking changes a search found
function robustnessBox(b,box){
  var r=b.robustness;
  box.appendChild(el('div',{cls:'worst',text:r.complete?'worst case '+pct(r.worst_case)+(b.min_worst_case!=null?' (min '+pct(b.min_worst_case)+')':'')+': '+
    r.worst_case_passed+' of '+r.complete+' cases right as written and under every perturbation; invariance '+pct(r.invariance):
    'worst case -: no case ran as written and under every perturbation'}));
  var t=el('table',{cls:'robustness'});
  t.appendChild(el('tr',{},['','n','rate','against as written','invariance',D.other].map(function(h){return el('th',{text:h});})));
  t.appendChild(el('tr',{},[el('td',{text:'as written'}),el('td',{cls:'num',text:String(r.n)}),el('td',{cls:'num',text:r.n?pct(r.accuracy):'-'}),el('td'),el('td'),el('td')]));
  Object.keys(r.perturbations||{}).forEach(function(name){var p=r.perturbations[name],v=(b.verdicts||{})[name];
    var d=p.shared?((p.newly_passing||[]).length-(p.newly_failing||[]).length)/p.shared:null;
    t.appendChild(el('tr',{'data-perturbation':name},[el('td',{text:'~'+name}),el('td',{cls:'num',text:String(p.n)}),el('td',{cls:'num',text:p.n?pct(p.accuracy):'-'}),
      el('td',{cls:'num',text:d==null?'-':pts(d)+' ('+pv(p.p_holm!=null?p.p_holm:p.p)+')'}),el('td',{cls:'num',text:pct(p.invariance)}),
      el('td',{cls:'v-'+(v||''),text:v||'-'})]));});
  box.appendChild(t);
}
function reliability(c){
  var w=240,h=200,l=34,r=8,t=8,bt=28,X=function(v){return l+v*(w-l-r);},Y=function(v){return t+(1-v)*(h-t-bt);};
  var svg=sv('svg',{width:w,height:h,viewBox:'0 0 '+w+' '+h,role:'img','class':'reliability'});
  [0,0.5,1].forEach(function(v){svg.appendChild(sv('line',{x1:l,x2:w-r,y1:Y(v),y2:Y(v),stroke:'#eaeef2'}));var tx=sv('text',{x:4,y:Y(v)+4});tx.textContent=(100*v)+'%';svg.appendChild(tx);});
  svg.appendChild(sv('line',{x1:X(0),y1:Y(0),x2:X(1),y2:Y(1),stroke:'#8c959f','stroke-dasharray':'4 3'}));
  (c.reliability||[]).forEach(function(bin){if(!bin.count)return;
    var rect=sv('rect',{x:X(bin.lower)+1,y:Y(bin.accuracy),width:Math.max(1,X(bin.upper)-X(bin.lower)-2),height:Y(0)-Y(bin.accuracy),fill:'#54aeff',opacity:0.75});
    var ti=sv('title',{});ti.textContent='confidence '+pct(bin.lower)+'\u2013'+pct(bin.upper)+': '+bin.count+' cases, accuracy '+pct(bin.accuracy)+', mean confidence '+pct(bin.confidence);
    rect.appendChild(ti);svg.appendChild(rect);
    svg.appendChild(sv('circle',{cx:X(bin.confidence),cy:Y(bin.confidence),r:2.5,fill:'#cf222e'}));});
  var lb=sv('text',{x:l,y:h-8});lb.textContent='confidence (bars: accuracy per bin)';svg.appendChild(lb);
  return svg;
}
function beyond(){
  var shown=suites.filter(function(s){return s.beyond;});
  if(!shown.length)return;
  app.appendChild(el('h2',{text:'Beyond accuracy'}));
  shown.forEach(function(s){var b=s.beyond,box=el('div',{cls:'beyond','data-suite':s.name},[el('h3',{text:s.name})]);
    if(b.robustness)robustnessBox(b,box);
    if(b.cyclic){var c=b.cyclic;
      box.appendChild(el('div',{cls:'cyclic',text:'CircularEval '+pct(c.circular_accuracy)+': '+c.circular_passed+' of '+c.cases+' cases right under every rotation of the options; as written '+pct(c.as_written_accuracy)}));
      box.appendChild(el('div',{cls:'positions',text:'positions chosen: '+(c.positions||[]).map(function(p,i){return p+' '+c.counts[i];}).join(', ')+
        ' (without a preference for a position: '+(c.expected||[]).map(num).join(', ')+')'}));}
    if(b.calibration){var k=b.calibration;
      box.appendChild(el('div',{cls:'calibration',text:'calibration over '+k.n+' cases: ECE '+k.ece_10_bin.toFixed(3)+' (10 bins), '+k.ece_10_bin_equal_mass.toFixed(3)+
        ' (10 equal-mass bins, HELM); Brier '+k.brier.toFixed(3)+'; selective accuracy at 10% '+pct(k.selective_accuracy_at_10)+'; mean confidence '+pct(k.mean_confidence)+', accuracy '+pct(k.accuracy)}));
      box.appendChild(el('div',{cls:'chart'},[el('div',{text:'reliability diagram'}),reliability(k)]));}
    if(b.search){var f=b.search,found=(f.searched||[]).filter(function(x){return x.broken;}),ul=el('ul',{cls:'findings'});
      box.appendChild(el('div',{cls:'search',text:'search='+f.max_examples+': '+found.length+' of '+(f.searched||[]).length+' searches found a change that breaks a passing case ('+f.rounds+' batched rounds)'}));
      found.forEach(function(x){var parts=Object.keys(x.changed||{}).map(function(k){return k+': '+JSON.stringify(x.changed[k][0])+' \u2192 '+JSON.stringify(x.changed[k][1]);});
        parts.push('answer: '+JSON.stringify(x.answer)+' \u2192 '+JSON.stringify(x.variant_answer));
        ul.appendChild(el('li',{},[el('b',{text:x['case']+'~'+x.perturbation}),' '+parts.join('; ')+(x.remembered?' (remembered)':'')]));});
      (f.searched||[]).filter(function(x){return x.error;}).forEach(function(x){ul.appendChild(el('li',{cls:'o-error',text:x['case']+'~'+x.perturbation+': error: '+x.error}));});
      box.appendChild(ul);}
    app.appendChild(box);});
}
function footer(){
  var v=D.versions||{},parts=[];for(var k in v)parts.push(k+' '+v[k]);
  app.appendChild(el('p',{cls:'muted',text:'generated '+(D.generated||'')+(parts.length?' \u00b7 '+parts.join(', '):'')}));
}
header();overview();beyond();filters();history();footer();apply();
window.llmevalReady=true;
})();
"""
